"""Output: human text with progress bars on a terminal, JSON lines otherwise; always redacted.

The event vocabulary (documented in docs/migration.md, "Events"): `start`, `source`, `phase`
(one per phase, with `elapsed_s`), `progress`, `table` (one per loaded table), `verified` (one
per compared table), `problem`, `note`, `decision`, `reported`, `done` (totals and
`elapsed_s`) and `failed`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

from migration.redact import redact

PROGRESS_INTERVAL_S = 2.0  # JSON mode: at most one progress line per table per interval
BAR_WIDTH = 30


class Reporter:
    """Writes events as text or JSON lines; every string passes through `redact`."""

    def __init__(
        self,
        fmt: str,
        secrets: tuple[str, ...] = (),
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.fmt = fmt
        self.secrets = secrets
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._last_progress = time.monotonic()
        self._bar_open = False
        self._pending = False  # a "phase ..." line on the terminal, replaced when it ends
        self._bar_started: dict[str, tuple[float, int]] = {}  # label -> (start, rows then)
        self.started = time.monotonic()
        self.tty = self.err.isatty() and fmt == "text"

    def elapsed(self) -> float:
        """Seconds since the command started (3 decimals)."""
        return round(time.monotonic() - self.started, 3)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return redact(value, self.secrets)
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._clean(v) for v in value]
        return value

    def _end_bar(self) -> None:
        if self._pending:
            self.err.write("\r\033[K")
            self._pending = False
        if self._bar_open:
            self.err.write("\n")
            self._bar_open = False

    @contextlib.contextmanager
    def phase(self, name: str, what: str, **fields: Any) -> Iterator[dict[str, Any]]:
        """Time one phase; when it ends, one `phase` event with `elapsed_s` (and the fields the
        body adds to the yielded dict). On a terminal its name shows while it runs."""
        began = time.monotonic()
        if self.tty:
            self._end_bar()
            self.err.write(f"{name}: {what} ...")
            self.err.flush()
            self._pending = True
        extra: dict[str, Any] = {}
        yield extra
        took = round(time.monotonic() - began, 3)
        self.event(
            "phase",
            f"{name}: {what} ({duration(took)})",
            phase=name,
            elapsed_s=took,
            **fields,
            **extra,
        )

    def event(self, event: str, message: str, level: str = "info", **fields: Any) -> None:
        """One event: a line of text, or one JSON object."""
        self._end_bar()
        if self.fmt == "json":
            record = {
                "ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                "level": level,
                "event": event,
                "message": message,
                **fields,
            }
            self.out.write(json.dumps(self._clean(record), default=str) + "\n")
            self.out.flush()
            return
        stream = self.err if level in ("warning", "error") else self.out
        prefix = f"{level}: " if level in ("warning", "error") else ""
        stream.write(self._clean(prefix + message) + "\n")
        stream.flush()

    def data(self, event: str, message: str, level: str = "info", **fields: Any) -> None:
        """An event only JSON consumers need (text mode shows the same in a report block)."""
        if self.fmt == "json":
            self.event(event, message, level, **fields)

    def text(self, block: str) -> None:
        """A multi-line report block (text mode only; JSON mode carries the data in events)."""
        if self.fmt == "text":
            self._end_bar()
            self.out.write(self._clean(block) + ("\n" if not block.endswith("\n") else ""))
            self.out.flush()

    def progress(self, label: str, done: int, total: int, final: bool = False) -> None:
        """A progress bar on a terminal (rows, rate, ETA, elapsed); periodic JSON progress
        events otherwise, with the same numbers."""
        now = time.monotonic()
        began, _ = self._bar_started.setdefault(label, (now, done))
        if done == 0 and not final:
            self._bar_started[label] = (now, 0)
            began = now
        took = now - began
        rate = done / took if took > 0 else 0.0
        eta = (total - done) / rate if rate > 0 and total > done else 0.0
        if final:
            self._bar_started.pop(label, None)
        if self.tty:
            if not final and now - self._last_progress < 0.1:
                return
            self._last_progress = now
            if self._pending:
                self.err.write("\r\033[K")
                self._pending = False
            frac = min(1.0, done / total) if total else 1.0
            filled = int(frac * BAR_WIDTH)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            self.err.write(
                f"\r{self._clean(label)[:30]:<30} [{bar}] {done:>10,}/{total:,} rows "
                f"{rate:>9,.0f} rows/s  ETA {clock(eta)}  elapsed {clock(took)}"
            )
            self.err.flush()
            self._bar_open = True
            if final:
                self._end_bar()
        elif self.fmt == "json" and (final or now - self._last_progress >= PROGRESS_INTERVAL_S):
            self._last_progress = now
            self.event(
                "progress",
                f"{label}: {done}/{total} rows, {rate:,.0f} rows/s, ETA {clock(eta)}",
                table=label,
                rows=done,
                total=total,
                rows_per_s=round(rate),
                eta_s=round(eta, 1),
                elapsed_s=round(took, 3),
            )


def clock(seconds: float) -> str:
    """`m:ss` (or `h:mm:ss`) for a bar."""
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def duration(seconds: float) -> str:
    """`0.25 s`, `12.3 s`, `2 min 5 s` for a phase line."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"
