"""One canonical, JSON-able form of a value as an ORM hands it to the app, Python type included,
so that two reads (SQLite before, PostgreSQL after) compare exactly: a Decimal by its digits
(`1.50` is not `1.5`), an aware datetime by its instant *and* offset, JSON by its structure with
the types of its leaves (`1` is not `1.0`, JSON null is not a missing key)."""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import json
import uuid
from typing import Any


def canon(value: Any) -> list[Any]:
    """[type name, text] for scalars; [type name, canonical JSON] for dicts and lists."""
    name = type(value).__name__
    if isinstance(value, enumerated_types()):
        return [name, f"{type(value).__qualname__}.{value.name}"]
    if isinstance(value, dt.datetime):
        return [name, value.isoformat(), str(value.utcoffset())]
    if isinstance(value, (dt.date, dt.time, dt.timedelta)):
        return [name, str(value)]
    if isinstance(
        value, (decimal.Decimal, uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address)
    ):
        return [name, str(value)]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return [name, bytes(value).hex()]
    if isinstance(value, (dict, list)):
        return [name, json.dumps(value, sort_keys=True, ensure_ascii=False)]
    if isinstance(value, float):
        return [name, value.hex()]
    return [name, repr(value)]


def enumerated_types() -> tuple[type, ...]:
    """Enum classes (imported lazily: the module stays importable without the app)."""
    import enum

    return (enum.Enum,)
