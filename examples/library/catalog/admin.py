"""Admin registrations (the changelists render every field, datetimes in local time)."""

from __future__ import annotations

from django.contrib import admin

from examples.library.catalog.models import Book, Genre, Loan, Publisher

admin.site.register(Publisher)
admin.site.register(Genre)
admin.site.register(Loan)


@admin.register(Book)
class BookAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Books with their dates in the list."""

    list_display = ("title", "status", "price", "added_at", "reading_time", "publisher")
    list_filter = ("status", "added_at")
    date_hierarchy = "added_at"
