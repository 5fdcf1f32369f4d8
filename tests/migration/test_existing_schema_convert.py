"""The converters of `--schema existing` (migration/convert.py): plain tests of each rule, and
hypothesis round trips (the pure ones in Python; jsonb's canonical text and the binary wire
formats against the real PostgreSQL, one connection per test)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import struct
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migration import convert
from migration.convert import TypeSpec
from migration.typemap import ValueProblem

UTC = dt.UTC
PARIS = convert.source_zone("Europe/Paris")


def refused(fn: Callable[[object], object], value: object) -> str:
    with pytest.raises(ValueProblem) as info:
        fn(value)
    return str(info.value)


# -- plain rules ---------------------------------------------------------------------------
def test_uuid_reads_32_hex_dashed_and_16_bytes_and_nothing_else():
    u = uuid.UUID("8f14e45f-ceea-467f-a9f2-1b5e6c7d8e9f")
    assert convert.to_uuid(u.hex) == u
    assert convert.to_uuid(u.hex.upper()) == u
    assert convert.to_uuid(str(u)) == u
    assert convert.to_uuid(u.bytes) == u
    assert convert.to_uuid(None) is None
    for bad in (u.hex[:31], "{" + str(u) + "}", u.urn, u.bytes[:15], 5, str(u) + " "):
        assert "is not a UUID" in refused(convert.to_uuid, bad)


def test_boolean_takes_0_1_and_postgresqls_words_only():
    assert [convert.to_bool(v) for v in (0, 1, "t", "FALSE", " yes ", "off", None)] == [
        False, True, True, False, True, False, None,
    ]  # fmt: skip
    for bad in (2, -1, 1.0, "maybe", b"\x01"):
        assert "is not a boolean" in refused(convert.to_bool, bad)


def test_integers_are_range_checked_and_exact():
    to_int4 = convert.to_int(4)
    assert to_int4(2**31 - 1) == 2**31 - 1
    assert to_int4(-(2**31)) == -(2**31)
    assert to_int4(7.0) == 7
    assert to_int4("-42") == -42
    assert "out of range for integer" in refused(to_int4, 2**31)
    assert "out of range for smallint" in refused(convert.to_int(2), 40_000)
    for bad in (7.5, "007", "1e3", " 1", b"1", float("inf")):
        refused(to_int4, bad)


def test_numeric_refuses_anything_it_would_round():
    money = convert.to_numeric(*convert.numeric_typmod((10 << 16 | 2) + 4))
    assert convert.numeric_typmod((10 << 16 | 2) + 4) == (10, 2)
    assert convert.numeric_typmod(-1) == (None, None)
    assert money(12.5) == Decimal("12.50")
    assert money("7.10") == Decimal("7.10")
    assert money(0.1) == Decimal("0.10")
    assert money(-0.0) == Decimal("0.00")
    assert str(money(-0.0)) == "0.00"
    assert "rounded to 2 decimal place(s)" in refused(money, 12.345)
    assert "too many digits for numeric(10,2)" in refused(money, 10**8)
    assert money(10**8 - 1) == Decimal("99999999.00")
    assert "finite" in refused(money, "NaN")
    unconstrained = convert.to_numeric(None, None)
    assert unconstrained("1.500") == Decimal("1.500")
    assert unconstrained(2**70) == Decimal(2**70)


def test_real_and_double_refuse_a_value_they_would_round():
    assert convert.to_double(0.1) == 0.1
    assert convert.to_double(2**53) == float(2**53)
    assert "exactly a double" in refused(convert.to_double, 2**53 + 1)
    assert convert.to_real(0.5) == 0.5
    assert "would be rounded to fit real" in refused(convert.to_real, 0.1)
    assert "would be rounded to fit real" in refused(convert.to_real, 1e300)


def test_text_is_length_checked_and_refuses_nul():
    short = convert.to_text(3, "character varying(3)")
    assert short("abé") == "abé"
    assert short(12) == "12"
    assert "longer than character varying(3)" in refused(short, "abcd")
    assert "NUL" in refused(short, "a\x00")
    assert "is not" in refused(short, b"abc")


def test_json_is_validated_and_kept_verbatim_and_jsonb_keeps_json_null():
    assert convert.to_json('{"b": 1,  "a": 2}') == '{"b": 1,  "a": 2}'
    assert convert.to_json("null") == "null"
    assert convert.to_json(None) is None
    assert convert.to_jsonb("null") == b"\x01null"
    for bad in ("{bad", "NaN", '{"a": Infinity}', '"\\ud800"', "", '"\\u0000"'):
        refused(convert.to_json, bad)


def test_jsonb_text_matches_postgresql_rules():
    tree = convert.parse_json('{"bb": 1, "a": [1.50, 1e2, -0, null, true], "é": "\\n\\u0001"}')
    assert (
        convert.jsonb_text(tree) == '{"a": [1.50, 100, 0, null, true], "bb": 1, "é": "\\n\\u0001"}'
    )


def test_timestamptz_reads_naive_text_in_the_source_zone_and_refuses_what_is_ambiguous():
    utc = convert.to_timestamptz(UTC)
    paris = convert.to_timestamptz(PARIS)
    assert utc("2024-03-01 12:00:00.5") == dt.datetime(2024, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
    assert utc("2024-03-01T12:00") == dt.datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert utc("2024-03-01 12:00:00+02:00") == dt.datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert utc("2024-03-01 12:00:00Z") == dt.datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert paris("2024-07-01 12:00:00") == dt.datetime(2024, 7, 1, 10, tzinfo=UTC)
    assert utc(1709294400) == dt.datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert utc(1709294400123) == dt.datetime(2024, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert utc(2460371.0) == dt.datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert "does not name one instant" in refused(paris, "2024-10-27 02:30:00")  # repeated
    assert "does not name one instant" in refused(paris, "2024-03-31 02:30:00")  # skipped
    for bad in ("2024-02-30 00:00:00", "01/03/2024", "2024-03-01 12:00:00.1234567", 10**15):
        refused(utc, bad)


def test_naive_timestamp_refuses_an_offset_it_would_drop():
    assert convert.to_timestamp("2024-03-01 12:00") == dt.datetime(2024, 3, 1, 12)  # noqa: DTZ001
    assert "would drop" in refused(convert.to_timestamp, "2024-03-01 12:00+01:00")


def test_dates_and_times():
    assert convert.to_date("2024-02-29") == dt.date(2024, 2, 29)
    refused(convert.to_date, "2023-02-29")
    refused(convert.to_date, "2024-02-29 00:00:00")
    to_time = convert.to_time(False)
    assert to_time("23:59:59.999999") == dt.time(23, 59, 59, 999999)
    assert to_time("07:05") == dt.time(7, 5)
    refused(to_time, "24:00:00")
    refused(to_time, "12:00+01:00")
    assert convert.to_time(True)("12:00:00+01:00") == dt.time(
        12, tzinfo=dt.timezone(dt.timedelta(hours=1))
    )


def _interval(wire: object) -> tuple[int, int, int]:
    micros, days, months = struct.unpack(">qii", wire)  # type: ignore[arg-type]
    return months, days, micros


def test_interval_reads_microseconds_iso_durations_and_clock_text():
    assert _interval(convert.to_interval(90_061_000_001)) == (0, 1, 3_661_000_001)
    assert _interval(convert.to_interval(-1)) == (0, -1, 86_399_999_999)
    assert _interval(convert.to_interval("P1Y2M3W4DT5H6M7.5S")) == (14, 25, 18_367_500_000)
    assert _interval(convert.to_interval("-P1D")) == (0, -1, 0)
    assert _interval(convert.to_interval("PT36H")) == (0, 0, 129_600_000_000)
    assert _interval(convert.to_interval("25:00:00")) == (0, 0, 90_000_000_000)
    assert _interval(convert.to_interval("-00:00:01.5")) == (0, 0, -1_500_000)
    assert _interval(convert.to_interval("1970-01-02 00:00:01")) == (0, 1, 1_000_000)
    for bad in ("P", "PT", "1 day", 1.5, "P1.5D", b"x"):
        refused(convert.to_interval, bad)


def test_inet_and_cidr_wire_formats():
    inet, cidr = convert.to_inet(False), convert.to_inet(True)
    assert inet("10.0.0.1") == bytes([2, 32, 0, 4, 10, 0, 0, 1])
    assert inet("10.0.0.1/8") == bytes([2, 8, 0, 4, 10, 0, 0, 1])
    assert inet("::1") == bytes([3, 128, 0, 16]) + ipaddress.ip_address("::1").packed
    assert cidr("10.0.0.0/8") == bytes([2, 8, 1, 4, 10, 0, 0, 0])
    assert "not an IP network" in refused(cidr, "10.0.0.1/8")
    for bad in ("10.0.0.256", "fe80::1%eth0", "01.2.3.4", 167772161):
        refused(inet, bad)


def test_enum_takes_only_its_labels():
    status = convert.to_enum(("draft", "published"), "page_status")
    assert status("draft") == "draft"
    assert "label of enum page_status (draft, published)" in refused(status, "Draft")


def test_an_unknown_type_is_refused_naming_it():
    with pytest.raises(convert.Unsupported, match="no exact conversion to point is known"):
        convert.converter(TypeSpec("point", "point"))


def test_arrays_from_json_text():
    ints = convert.converter(
        TypeSpec("_int4", "integer[]", category="A", element=TypeSpec("int4", "integer"),
                 element_oid=23)
    )  # fmt: skip
    assert ints.fn("[]") == struct.pack(">iii", 0, 0, 23)
    assert ints.fn("[1, null]") == struct.pack(">iiiiiii", 1, 1, 23, 2, 1, 4, 1) + struct.pack(
        ">i", -1
    )
    assert ints.fn("null") is None
    for bad in ("[[1]]", '{"a": 1}', "[1.5]", "[2147483648]", "[1"):
        refused(ints.fn, bad)


# -- round trips ---------------------------------------------------------------------------
@given(st.uuids())
def test_uuid_round_trips_in_every_stored_form(u: uuid.UUID) -> None:
    assert convert.to_uuid(u.hex) == convert.to_uuid(str(u)) == convert.to_uuid(u.bytes) == u


@given(st.integers(-(2**63), 2**63 - 1))
def test_interval_microseconds_round_trip(v: int) -> None:
    months, days, micros = _interval(convert.to_interval(v))
    assert months == 0
    assert 0 <= micros < convert.US_PER_DAY
    assert days * convert.US_PER_DAY + micros == v


NAIVE = st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30))  # noqa: DTZ001 - naive on purpose, as SQLite stores them


@given(NAIVE)
def test_naive_utc_text_round_trips_as_the_same_instant(d: dt.datetime) -> None:
    got = convert.to_timestamptz(UTC)(d.isoformat(" "))
    assert got == d.replace(tzinfo=UTC)
    assert convert.canon_timestamptz(got) == d.isoformat(" ", "microseconds")


@given(st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**7),
                   max_value=10**7))  # fmt: skip
def test_numeric_keeps_every_two_place_decimal(d: Decimal) -> None:
    assert convert.to_numeric(10, 2)(str(d)) == d


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.decimals(allow_nan=False, allow_infinity=False).map(str).map(Decimal)
    | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(
                st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


def _dumps(tree: object) -> str:
    if isinstance(tree, Decimal):
        return str(tree)
    if isinstance(tree, list):
        return "[" + ",".join(map(_dumps, tree)) + "]"
    if isinstance(tree, dict):
        return "{" + ",".join(json.dumps(k) + ":" + _dumps(v) for k, v in tree.items()) + "}"
    return json.dumps(tree, ensure_ascii=False)


@pytest.fixture
def pg(target: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(target) as conn:
        yield conn


@pytest.mark.db
@pytest.mark.property
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tree=JSON)
def test_jsonb_canonical_text_is_postgresqls(pg: psycopg.Connection, tree: object) -> None:
    text = _dumps(tree)
    wire = convert.to_jsonb(text)
    row = pg.execute("SELECT %s::jsonb::text", (text,)).fetchone()
    assert row is not None
    assert convert.canon_jsonb(wire) == convert.canon_text(row[0])


@pytest.mark.db
@pytest.mark.property
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    micros=st.integers(-(2**40), 2**40),
    iso=st.tuples(*(st.integers(0, 50) for _ in range(6))),
    ip=st.ip_addresses(),
)
def test_wire_formats_are_what_postgresql_reads_and_sends_back(
    pg: psycopg.Connection, micros: int, iso: tuple[int, ...], ip: object
) -> None:
    y, mo, d, h, mi, s = iso
    for wire, typ in (
        (convert.to_interval(micros), "interval"),
        (convert.to_interval(f"P{y}Y{mo}M{d}DT{h}H{mi}M{s}S"), "interval"),
        (convert.to_inet(False)(str(ip)), "inet"),
    ):
        with pg.cursor() as cur:
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS probe_{typ} (v {typ})")
            cur.execute(f"TRUNCATE probe_{typ}")
            with cur.copy(f"COPY probe_{typ} FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["bytea"])
                copy.write_row([wire])
            sent = cur.execute(f"SELECT encode({typ}_send(v), 'hex') FROM probe_{typ}").fetchone()
        assert sent is not None
        assert sent[0] == bytes(wire).hex()  # type: ignore[arg-type]
