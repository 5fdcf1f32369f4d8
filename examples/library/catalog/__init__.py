"""The library's catalog: publishers, books, genres, loans."""
