"""Output: human text with progress bars on a terminal, JSON lines otherwise; always redacted."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
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
        self.tty = self.err.isatty() and fmt == "text"

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return redact(value, self.secrets)
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._clean(v) for v in value]
        return value

    def _end_bar(self) -> None:
        if self._bar_open:
            self.err.write("\n")
            self._bar_open = False

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
        """A progress bar on a terminal; periodic JSON progress events otherwise."""
        now = time.monotonic()
        if self.tty:
            if not final and now - self._last_progress < 0.1:
                return
            self._last_progress = now
            frac = min(1.0, done / total) if total else 1.0
            filled = int(frac * BAR_WIDTH)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            self.err.write(f"\r{self._clean(label)[:30]:<30} [{bar}] {done:>10,}/{total:,} rows")
            self.err.flush()
            self._bar_open = True
            if final:
                self._end_bar()
        elif self.fmt == "json" and (final or now - self._last_progress >= PROGRESS_INTERVAL_S):
            self._last_progress = now
            self.event(
                "progress", f"{label}: {done}/{total} rows", table=label, rows=done, total=total
            )
