"""Binary COPY in chunks, each noted by where it ended in the heap (run --verify's stream form).

`run --verify` on a table this transaction created (`verify.Stream`): the rows go out in
chunks of about CHUNK_BYTES, one COPY statement each. The reading thread encodes the rows (the
load's fast encoder) into pieces and hands them to a sender thread, which owns the connection:
it COPYs each chunk, MD5s its pieces as they are (`_Hashing`: one update per ~4 MB, no Python
code per row, run while the reading thread goes on), then notes the chunk's count and last ctid
(the COPY's row count; `verify.chunk_end`, a look at the heap's last pages). So the reading
thread does what the plain load does (read, encode); at verification PostgreSQL digests the
chunks' stored rows with its parallel workers (`verify.stream_target_sum`).

Memory is bounded: at most QUEUED pieces of at most PIECE_BYTES wait for the sender (slices of
at most two batches' buffers), and at most HASH_BYTES of sent pieces wait for their MD5 update.
A chunk larger than DIGEST_MAX_BYTES (a huge value) is not digested (the server would hold it
whole): the table is then verified in another form, and says why (`Stream.broken`).
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import hashlib
import itertools
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql

from migration import verify
from migration.source import Large

CHUNK_BYTES = 1 << 22  # ~4 MB of rows per COPY: a chunk's digest is one string_agg of this
PIECE_BYTES = 1 << 19  # hand the sender ~512 KB at a time: few calls, bounded memory
QUEUED = 8  # pieces waiting for the sender at most (~4 MB)
HASH_BYTES = 1 << 22  # ~4 MB per MD5 update on the sender (`_Hashing`)
DIGEST_MAX_BYTES = 1 << 28  # 256 MB: a larger chunk (a huge value) is not digested server-side


def md5(data: bytes | bytearray = b"") -> Any:
    """OpenSSL's MD5 (hashlib): on chunks of hundreds of KB it is ~15 % faster than CPython's
    own `_md5`, which verify uses for short rows."""
    return hashlib.md5(data, usedforsecurity=False)


class _Hashing:
    """A chunk's MD5, fed in updates of at least HASH_BYTES (pieces kept until then, then
    joined): hashlib lets other threads run only during an update, and a thread waiting for the
    interpreter again after each short update would lose what it gained (a convoy)."""

    def __init__(self) -> None:
        self.md5 = md5()
        self.pending: list[bytes | bytearray | memoryview] = []
        self.size = 0

    def add(self, piece: bytes | bytearray | memoryview) -> None:
        self.pending.append(piece)
        self.size += len(piece)
        if self.size >= HASH_BYTES:
            self._update()

    def digest(self) -> bytes:
        """The chunk's MD5; the next chunk starts afresh."""
        self._update()
        digest: bytes = self.md5.digest()
        self.md5 = md5()
        return digest

    def _update(self) -> None:
        self.md5.update(b"".join(self.pending))
        self.pending, self.size = [], 0


IDLE_IN_TRANSACTION = psycopg.pq.TransactionStatus.INTRANS  # usable: not failed, not busy
Encode = Callable[..., object]  # psycopg's row encoder: (row, transformer, out bytearray)


def streamed_pieces(
    encode: Encode, tx: object, row: Sequence[object], encoding: str = "utf-8"
) -> Iterator[bytes]:
    """A row holding `Large` values as binary COPY bytes, in pieces: the other fields encoded as
    usual, each large value's length, then its own pieces (never held whole); the last piece is
    the rest of the row. A large TEXT goes in the session's client `encoding` (`large_pieces`)."""
    placeholders = [("" if v.text else b"") if isinstance(v, Large) else v for v in row]
    encoded = bytearray()
    encode(placeholders, tx, encoded)
    pos = start = 2  # after the field count
    yield bytes(encoded[:2])
    for value in row:
        length = int.from_bytes(encoded[pos : pos + 4], "big", signed=True)
        if isinstance(value, Large):
            size, pieces = large_pieces(value, encoding)
            yield bytes(encoded[start:pos]) + size.to_bytes(4, "big")
            yield from pieces
            start = pos + 4  # the placeholder is empty
        pos += 4 + max(length, 0)
    yield bytes(encoded[start:])


def large_pieces(value: Large, encoding: str) -> tuple[int, Iterator[bytes]]:
    """A large value's length as sent and its pieces: a TEXT's UTF-8 bytes as they are in the
    file, or recoded into another client encoding (PostgreSQL reads text in the session's
    client encoding; the length is counted in a first pass, so the value is read twice)."""
    if not value.text or codecs.lookup(encoding).name in ("utf-8", "ascii"):  # ascii: SQL_ASCII,
        # to which psycopg sends text as UTF-8 (the server stores its bytes unconverted)
        return value.size, value.chunks()
    return sum(map(len, _recoded(value, encoding))), _recoded(value, encoding)


def _recoded(value: Large, encoding: str) -> Iterator[bytes]:
    """A large TEXT's pieces in `encoding` (a character it lacks raises UnicodeEncodeError, as
    psycopg's dumper does for a smaller value; invalid UTF-8, SourceTextError)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    encoder = codecs.getincrementalencoder(encoding)()
    with value.source._reading("read failed"):  # as Large.chars: its errors, translated
        for piece in value.chunks():
            yield encoder.encode(decoder.decode(piece))
        yield encoder.encode(decoder.decode(b"", final=True), final=True)


class ChunkedCopy:
    """The writer of `load.copy_rows` for a STREAM-verified table (module docstring).

    Use as a context manager: `close()` at the end of the rows sends the last chunk and waits
    until it is stored and noted; leaving with an exception aborts the COPY in progress (the
    sender's own errors never hide the reader's). `copy_sql` is the table's COPY statement,
    `encode` and `tx` the load's fast encoder and its binary dumpers, `frame` the stream's
    header and trailer."""

    def __init__(
        self,
        conn: psycopg.Connection,
        copy_sql: sql.Composed,
        table: sql.Identifier,
        coder: tuple[Encode, psycopg.abc.Transformer],
        frame: tuple[bytes, bytes],
        stream: verify.Stream,
    ) -> None:
        self.conn = conn
        self.copy_sql = copy_sql
        self.table = table
        self.regclass = table.as_string(conn)  # here: the sender owns the connection after
        self.encode, self.tx = coder
        self.encoding = conn.info.encoding  # read here: the sender owns the connection after
        self.header, self.trailer = frame
        self.stream = stream
        self.buffer = bytearray()
        self.hashing = _Hashing()  # the sender's
        self.rows = 0  # of the chunk being read
        self.size = 0  # bytes of the chunk handed to the sender
        self.queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=QUEUED)
        self.error: BaseException | None = None
        self.copy: Any = None  # the sender's COPY in progress
        self.sender = threading.Thread(target=self._send, name="chunked-copy", daemon=True)
        self.sender.start()

    def __enter__(self) -> ChunkedCopy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and self.sender.is_alive():
            self._stop(("abort", exc))

    def write(self, rows: Iterable[Sequence[object]], wire: object = None) -> None:
        """Rows, encoded into the current piece."""
        batch = rows if isinstance(rows, list) else list(rows)
        collections.deque(
            map(self.encode, batch, itertools.repeat(self.tx), itertools.repeat(self.buffer)),
            maxlen=0,
        )
        self.rows += len(batch)
        self._maybe_ship()

    def write_streamed(self, row: Sequence[object], wire: object = None) -> None:
        """A row holding `Large` values, piece by piece (`streamed_pieces`)."""
        self._flush()
        *pieces, rest = streamed_pieces(self.encode, self.tx, row, self.encoding)
        for piece in pieces:
            self._hand(piece)
        self.buffer = bytearray(rest)
        self.rows += 1
        self._maybe_ship()

    def close(self) -> None:
        """The last chunk sent and noted; the sender's error, if any, raised here."""
        if self.rows:
            self._end_chunk()
        self._stop(("stop",))
        if self.error is not None:
            raise self.error

    def _maybe_ship(self) -> None:
        """A full piece to the sender; a chunk of CHUNK_BYTES or more (handed and buffered)
        ended."""
        if self.size + len(self.buffer) >= CHUNK_BYTES:
            self._end_chunk()
        elif len(self.buffer) >= PIECE_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self.buffer:
            self._hand(self.buffer)
            self.buffer = bytearray()

    def _hand(self, piece: bytes | bytearray) -> None:
        """A piece to the sender in slices of PIECE_BYTES (a batch of large rows is encoded
        whole: handed as one item, QUEUED of them would keep QUEUED batches alive)."""
        self.size += len(piece)
        view = memoryview(piece)
        for start in range(0, len(view), PIECE_BYTES):
            self._put(("data", view[start : start + PIECE_BYTES]))

    def _end_chunk(self) -> None:
        self._flush()
        self._put(("end", self.rows, self.size))
        self.rows, self.size = 0, 0

    def _put(self, item: tuple[Any, ...]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def _stop(self, item: tuple[Any, ...]) -> None:
        self.queue.put(item)
        self.sender.join()

    def _send(self) -> None:
        """The sender thread: COPY each chunk, then note where it ended; after an error, only
        drain the queue."""
        try:
            self._copy_chunks()
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
            self.error = exc
            while self.queue.get()[0] not in ("stop", "abort"):
                pass

    def _copy_chunks(self) -> None:
        """Each chunk's pieces into one COPY; at its end, where it ended; on abort, CopyFail."""
        with self.conn.cursor() as cur, contextlib.ExitStack() as chunk:
            while True:
                kind, *args = self.queue.get()
                if kind == "data":
                    if not self.copying:
                        self.copy = chunk.enter_context(cur.copy(self.copy_sql))
                        self.copy.write(self.header)
                    self.copy.write(args[0])
                    self.hashing.add(args[0])
                elif kind == "end":
                    self.copy.write(self.trailer)
                    digest = self.hashing.digest()  # while PostgreSQL stores the last rows
                    chunk.close()  # the COPY ends: PostgreSQL has stored the chunk
                    self.copy = None
                    self._ended(args[0], digest, args[1], cur.rowcount)
                else:
                    break
            if kind == "abort" and self.copying:  # CopyFail, with the reader's error
                with contextlib.suppress(Exception):  # never hides the reader's error
                    chunk.__exit__(type(args[0]), args[0], args[0].__traceback__)
                chunk.pop_all()

    @property
    def copying(self) -> bool:
        return self.copy is not None

    def _ended(self, rows: int, digest: bytes, size: int, stored: int) -> None:
        """A chunk stored (`stored` rows, as its COPY says): where it ended noted."""
        if self.stream.broken is not None:
            return
        if size > DIGEST_MAX_BYTES:
            self.stream.broken = (
                f"a chunk of {size:,} bytes (a large value) is not digested by the server"
            )
            return
        last = verify.chunk_end(self.conn, self.table, self.regclass, self.stream.last_tid)
        self.stream.add(rows, digest, (stored, last))
