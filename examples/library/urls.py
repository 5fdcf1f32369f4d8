"""URLs: the admin and the JSON API."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from examples.library.catalog import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/books/", views.books),
    path("api/books/<uuid:external_id>/", views.book),
]
