"""The catalog's models: every field type whose PostgreSQL column differs from SQLite's."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Publisher(models.Model):
    """A publisher, keyed by UUID (char(32) on SQLite, uuid on PostgreSQL)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    country = models.CharField(max_length=2, blank=True)
    founded = models.DateField(null=True, blank=True)
    profile = models.JSONField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class Genre(models.Model):
    """A genre; books have many."""

    name = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.name


class Book(models.Model):
    """A book: decimals, durations, JSON, aware datetimes, times, bytes, choices."""

    class Status(models.TextChoices):
        AVAILABLE = "available", "Available"
        LENT = "lent", "Lent out"
        LOST = "lost", "Lost"

    isbn = models.CharField(max_length=13, unique=True)
    external_id = models.UUIDField(default=uuid.uuid4, unique=True)
    title = models.CharField(max_length=200)
    publisher = models.ForeignKey(Publisher, on_delete=models.CASCADE, related_name="books")
    genres = models.ManyToManyField(Genre, related_name="books", blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.AVAILABLE)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    weight_kg = models.FloatField(null=True, blank=True)
    pages = models.PositiveIntegerField()
    edition = models.PositiveSmallIntegerField(default=1)
    copies_sold = models.BigIntegerField(default=0)
    in_print = models.BooleanField(default=True)
    published = models.DateField(null=True, blank=True)
    added_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(null=True, blank=True)
    reading_time = models.DurationField(null=True, blank=True)
    opens_at = models.TimeField(null=True, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    cover = models.BinaryField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        constraints = (models.CheckConstraint(condition=Q(price__gte=0), name="book_price_gte_0"),)

    def __str__(self) -> str:
        return self.title


class Loan(models.Model):
    """A loan of a book to a borrower seen at an IP address."""

    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="loans")
    borrower = models.CharField(max_length=100)
    borrower_ip = models.GenericIPAddressField(null=True, blank=True)
    borrowed_at = models.DateTimeField()
    period = models.DurationField()
    returned = models.BooleanField(null=True)
    notes = models.JSONField(default=dict)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{self.book_id} -> {self.borrower}"
