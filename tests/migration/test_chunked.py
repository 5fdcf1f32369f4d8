"""chunked._Hashing, the sender's MD5 of each chunk: the digest of exactly the bytes sent, in
updates of bounded size, whatever the pieces."""

from __future__ import annotations

import hashlib
import random

import pytest

from migration import chunked


def md5_of(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


@pytest.mark.parametrize("seed", range(5))
def test_a_chunks_digest_is_the_md5_of_its_pieces_joined(monkeypatch: pytest.MonkeyPatch, seed):
    monkeypatch.setattr(chunked, "HASH_BYTES", 1000)
    rnd = random.Random(seed)  # noqa: S311 - test data
    hashing = chunked._Hashing()
    for _chunk in range(3):
        pieces = [rnd.randbytes(rnd.choice([0, 1, 99, 999, 1000, 1001, 5000])) for _ in range(20)]
        views = [memoryview(bytearray(p))[1:] if p else p for p in pieces]  # the kinds handed
        for piece in views:
            hashing.add(piece)
        assert hashing.digest() == md5_of(b"".join(bytes(v) for v in views))


def test_an_empty_chunk_digests_as_no_bytes() -> None:
    assert chunked._Hashing().digest() == md5_of(b"")


class SpyMD5:
    """An MD5 that notes the size of each update."""

    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.updates: list[int] = []

    def update(self, data: bytes) -> None:
        self.updates.append(len(data))
        self.md5.update(data)

    def digest(self) -> bytes:
        return self.md5.digest()


def test_pieces_wait_for_their_update_only_up_to_hash_bytes(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(chunked, "HASH_BYTES", 1000)
    spy = SpyMD5()
    monkeypatch.setattr(chunked, "md5", lambda: spy)
    hashing = chunked._Hashing()
    for _ in range(25):
        hashing.add(b"x" * 300)
        assert hashing.size < 1000  # what waits for its update never reaches HASH_BYTES
    assert spy.updates == [1200] * 6  # 25 pieces of 300 bytes: updates of four, one waiting
    assert hashing.digest() == md5_of(b"x" * 300 * 25)
    assert spy.updates[-1] == 300
