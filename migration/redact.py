"""Remove passwords from anything printed: URLs, conninfo strings, driver error texts.

Two layers. Patterns mask what looks like a password anywhere (`scheme://user:PW@`,
`password=PW`). And the target the user gave is taken apart, however malformed (no scheme, one
slash, bad `%` escapes, unknown parameters, key=value strings, mistyped keys), into every form in
which its secret could be echoed: raw, percent-decoded, percent-encoded, conninfo-quoted, and the
whole string itself (libpq quotes an unparseable string back in full). Each is masked verbatim.
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus, unquote, urlsplit

_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*:/{1,2}[^:/?#@\s]*:)(?P<pw>[^@\s]*)@"
)
_KV_PASSWORD = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE
)
MASK = "***"
MIN_SECRET = 3  # shorter strings are masked only where a pattern finds them, not everywhere

# Connection parameters whose values are safe to show; any other key's value (password,
# a mistyped `pasword`, sslpassword, an unknown one) is treated as a secret.
SAFE_KEYS = frozenset(
    {
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "sslmode",
        "connect_timeout",
        "application_name",
        "target_session_attrs",
        "sslrootcert",
        "gssencmode",
        "channel_binding",
        "require_auth",
        "client_encoding",  # an encoding's name: shown in messages (charset.py)
    }
)
# user:PW@ after an optional scheme (`scheme:/` or `scheme://`; without a slash `app:` is the
# user); shortest and longest match: an unencoded @ in the password makes the intent ambiguous.
_SCHEME = r"^\s*(?>(?:[A-Za-z][A-Za-z0-9+.-]*:/+)?)"
_USERINFO_SHORT = re.compile(_SCHEME + r"[^:@/\s]*:(?P<pw>[^@]*)@")
_USERINFO_LONG = re.compile(_SCHEME + r"[^:@/\s]*:(?P<pw>.*)@")
_KV_PAIR = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>'(?:[^'\\]|\\.)*'|\S+)")
_QUERY_PAIR = re.compile(r"[?&](?P<key>[^=&#\s]+)=(?P<value>[^&#\s]*)")


def url_password(url: str) -> str | None:
    """The password inside a PostgreSQL URL, if any (so it can be masked verbatim too)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return unquote(parts.password)
    return None


def _forms(raw: str) -> set[str]:
    """A secret as typed, decoded, and encoded as a URL or conninfo string would carry it."""
    decoded = unquote(raw)
    out = {raw, decoded}
    for value in (raw, decoded):
        out |= {quote(value, safe=""), quote_plus(value, safe=""), quote(value)}
    return out


def _unquote_conninfo(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def target_secrets(target: str | None) -> tuple[str, ...]:
    """Every string to mask wherever it appears, found in a target URL or conninfo string."""
    if not target:
        return ()
    found: set[str] = {target, target.strip()}
    for pattern in (_USERINFO_SHORT, _USERINFO_LONG):
        m = pattern.match(target)
        if m and m.group("pw"):
            found |= _forms(m.group("pw"))
    for m in _QUERY_PAIR.finditer(target):
        if unquote(m.group("key")).lower() not in SAFE_KEYS and m.group("value"):
            found |= _forms(m.group("value"))
    if "://" not in target:  # a key=value string (or something libpq will read as one)
        for m in _KV_PAIR.finditer(target):
            if m.group("key").lower() not in SAFE_KEYS:
                value = m.group("value")
                found |= {value, _unquote_conninfo(value)} | _forms(_unquote_conninfo(value))
    secrets = {s for s in found if len(s) >= MIN_SECRET}
    return tuple(sorted(secrets, key=len, reverse=True))  # longest first: no partial masks


def show_target(target: str) -> str:
    """The target as it may be printed: user, host, port and database, never a secret; a string
    that is neither a URL nor key=value pairs is not shown at all."""
    if "://" in target:
        parts = tuple(s for s in target_secrets(target) if s not in (target, target.strip()))
        return redact(target, parts)
    pairs = list(_KV_PAIR.finditer(target))
    if pairs and "=" in target and not _USERINFO_SHORT.match(target):
        return " ".join(
            f"{m.group('key')}={m.group('value') if m.group('key').lower() in SAFE_KEYS else MASK}"
            for m in pairs
        )
    return "(not a postgresql:// URL or key=value string; not shown, it may hold the password)"


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with URL passwords, `password=...` pairs and the given secrets masked."""
    out = text
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= MIN_SECRET:
            out = out.replace(secret, MASK)
    out = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", out)
    return _KV_PASSWORD.sub(lambda m: m.group("head") + MASK, out)
