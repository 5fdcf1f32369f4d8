"""A small JSON API over the catalog."""

from __future__ import annotations

import uuid

from django.http import Http404, HttpRequest, JsonResponse

from examples.library.catalog.models import Book


def book_json(book: Book) -> dict[str, object]:
    """A book as the API returns it."""
    return {
        "id": book.id,
        "external_id": str(book.external_id),
        "title": book.title,
        "status": book.status,
        "price": str(book.price),
        "added_at": book.added_at.isoformat(),
        "reading_time": None if book.reading_time is None else book.reading_time.total_seconds(),
        "metadata": book.metadata,
        "genres": sorted(g.name for g in book.genres.all()),
    }


def books(request: HttpRequest) -> JsonResponse:
    """GET /api/books/?format=...&genre=...&status=..."""
    query = Book.objects.all().prefetch_related("genres")
    if "format" in request.GET:
        query = query.filter(metadata__format=request.GET["format"])
    if "genre" in request.GET:
        query = query.filter(genres__name=request.GET["genre"])
    if "status" in request.GET:
        query = query.filter(status=request.GET["status"])
    return JsonResponse({"books": [book_json(b) for b in query]})


def book(request: HttpRequest, external_id: uuid.UUID) -> JsonResponse:
    """GET /api/books/<uuid>/"""
    found = Book.objects.filter(external_id=external_id).prefetch_related("genres").first()
    if found is None:
        raise Http404("no such book")
    return JsonResponse(book_json(found))
