"""Remove passwords from anything printed: URLs, conninfo strings, driver error texts."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*:)(?P<pw>[^@\s]*)@")
_KV_PASSWORD = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE
)
MASK = "***"


def url_password(url: str) -> str | None:
    """The password inside a PostgreSQL URL, if any (so it can be masked verbatim too)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return unquote(parts.password)
    return None


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with URL passwords, `password=...` pairs and the given secrets masked."""
    out = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", text)
    out = _KV_PASSWORD.sub(lambda m: m.group("head") + MASK, out)
    for secret in secrets:
        if secret and len(secret) >= 3:
            out = out.replace(secret, MASK)
    return out
