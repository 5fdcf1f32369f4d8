"""Northwind and Chinook (public sample databases, schemas vendored under samples/ with their
licenses): every view is created and returns what SQLite returns; every table and index migrates.

Before the allowlist renderer, Northwind kept 7 of its 16 views (text = integer, datetime(),
text + unknown, a view over a view created too early) while `run` exited 0."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
from pathlib import Path

import psycopg
import pytest

from tests.migration.conftest import query, run_cli

pytestmark = pytest.mark.db

SAMPLES = Path(__file__).parent / "samples"
# A small consistent data set written for these tests (the schema is Northwind's own).
NORTHWIND_DATA = """
INSERT INTO Categories VALUES (1, 'Beverages', 'Soft drinks', NULL),
  (2, 'Condiments', 'Sauces', NULL);
INSERT INTO Suppliers (SupplierID, CompanyName, City, Country) VALUES
  (1, 'Exotic Liquids', 'London', 'UK'), (2, 'New Orleans Cajun Delights', 'New Orleans', 'USA');
INSERT INTO Products VALUES (1, 'Chai', 1, 1, '10 boxes', 18, 39, 0, 10, '0'),
  (2, 'Chang', 1, 1, '24 bottles', 19, 17, 40, 25, '1'),
  (3, 'Aniseed Syrup', 2, 2, '12 bottles', 10, 13, 70, 25, '0');
INSERT INTO Customers (CustomerID, CompanyName, ContactName, City, Country) VALUES
  ('ALFKI', 'Alfreds Futterkiste', 'Maria Anders', 'Berlin', 'Germany'),
  ('ANATR', 'Ana Trujillo', 'Ana Trujillo', 'London', 'Mexico');
INSERT INTO Employees (EmployeeID, LastName, FirstName, Title, BirthDate, HireDate, City,
  ReportsTo) VALUES (1, 'Davolio', 'Nancy', 'Sales', '1948-12-08', '1992-05-01', 'Seattle', NULL),
  (2, 'Fuller', 'Andrew', 'VP', '1952-02-19', '1992-08-14', 'Tacoma', 1);
INSERT INTO Shippers VALUES (1, 'Speedy Express', '(503) 555-9831'), (2, 'United Package', NULL);
INSERT INTO Regions VALUES (1, 'Eastern');
INSERT INTO Territories VALUES ('01581', 'Westboro', 1);
INSERT INTO EmployeeTerritories VALUES (1, '01581');
INSERT INTO CustomerDemographics VALUES ('A', 'Big');
INSERT INTO CustomerCustomerDemo VALUES ('ALFKI', 'A');
INSERT INTO Orders (OrderID, CustomerID, EmployeeID, OrderDate, RequiredDate, ShippedDate,
  ShipVia, Freight, ShipName, ShipCity, ShipCountry) VALUES
  (10248, 'ALFKI', 1, '1996-07-04 00:00:00.000', '1996-08-01 00:00:00.000',
   '1996-07-16 00:00:00.000', 1, 32.38, 'Vins', 'Reims', 'France'),
  (10249, 'ANATR', 2, '1997-07-05 00:00:00.000', '1997-08-16 00:00:00.000',
   '1997-07-10 00:00:00.000', 2, 11.61, 'Toms', 'Münster', 'Germany'),
  (10250, 'ALFKI', 2, '1997-12-31 12:00:00.000', '1998-01-05 00:00:00.000', NULL, 1, 65.83,
   'Hanari', 'Rio', 'Brazil');
INSERT INTO "Order Details" VALUES (10248, 1, 14, 12, 0.0), (10248, 2, 9.8, 10, 0.0),
  (10249, 1, 18.6, 9, 0.0), (10249, 3, 42.4, 140, 0.15), (10250, 2, 7.7, 10, 0.05);
"""


def _canon(value: object) -> object:
    """One form for values both sides hold alike (SQLite keeps datetimes as text, numbers as
    int or float; PostgreSQL returns timestamps, numerics)."""
    if isinstance(value, bool | int | float | decimal.Decimal):
        return round(float(value), 6)
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == " ":
        try:
            return dt.datetime.fromisoformat(value).isoformat(" ")
        except ValueError:
            return value
    return value


def _rows(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return sorted((tuple(_canon(v) for v in r) for r in rows), key=repr)


def _build(make_db, name: str, data: str = "") -> str:
    return make_db((SAMPLES / f"{name}_schema.sql").read_text() + data, name=f"{name}.db")


def test_northwind_keeps_all_16_views_and_each_returns_what_sqlite_returns(make_db, target):
    src = _build(make_db, "northwind", NORTHWIND_DATA)
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    (done,) = [e for e in res.events if e["event"] == "done"]
    assert str(done["message"]).startswith("migrated 13 table(s) (26 rows) and 16 view(s)")
    assert query(target, "SELECT count(*) FROM pg_views WHERE schemaname = 'public'") == [(16,)]
    lite = sqlite3.connect(src)
    views = [str(r[0]) for r in lite.execute("SELECT name FROM sqlite_master WHERE type='view'")]
    assert len(views) == 16
    with psycopg.connect(target) as conn:
        for view in views:
            expected = _rows(lite.execute(f'SELECT * FROM "{view}"').fetchall())
            got = _rows(conn.execute(f'SELECT * FROM "{view.lower()}"').fetchall())
            assert got == expected, view
    lite.close()


def test_chinook_tables_and_indexes_migrate_and_plan_predicts_no_refusal(make_db, target):
    src = _build(make_db, "chinook")
    plan = run_cli("plan", "--source", src, "--target", target)
    assert plan.code == 0, plan.text
    assert [e for e in plan.events if e["event"] == "refused"] == []
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    indexes = query(target, "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'ifk_%'")
    assert indexes == [(11,)]
