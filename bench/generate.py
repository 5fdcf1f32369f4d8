"""Deterministic SQLite fixtures for the benchmark: the Pet Store's `pets` table and a
multi-table schema with foreign keys (owners, pets, orders, order_items).

Every value comes from `random.Random(seed)`, so the same (rows, seed) gives the same file,
byte for byte in content; files are cached under bench/out/data and rebuilt only when absent.
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

# Bump when the generated content changes, so cached files are not reused by mistake.
GENERATOR_VERSION = 2

# Rows are written in batches of this size: large enough to amortise the sqlite3 call,
# small enough that generation stays at a few MB of memory even at 10M rows.
BATCH_ROWS = 50_000

PETS_DDL = """
CREATE TABLE pets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(50) NOT NULL,
    species VARCHAR(50) NOT NULL,
    breed VARCHAR(50),
    age FLOAT,
    price FLOAT NOT NULL,
    status VARCHAR(20) DEFAULT 'available'
)
"""

MULTI_DDL = """
CREATE TABLE owners (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(100) NOT NULL,
    email VARCHAR(200) NOT NULL UNIQUE,
    phone VARCHAR(30),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE pets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(50) NOT NULL,
    species VARCHAR(50) NOT NULL,
    breed VARCHAR(50),
    age FLOAT,
    price FLOAT NOT NULL,
    status VARCHAR(20) DEFAULT 'available',
    owner_id INTEGER REFERENCES owners(id) ON DELETE SET NULL
);
CREATE INDEX pets_owner_id ON pets (owner_id);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id INTEGER NOT NULL REFERENCES owners(id) ON DELETE CASCADE,
    ordered_at TIMESTAMP NOT NULL,
    status VARCHAR(20) NOT NULL DEFAULT 'placed',
    total FLOAT NOT NULL
);
CREATE INDEX orders_owner_id ON orders (owner_id);
CREATE TABLE order_items (
    order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    pet_id INTEGER NOT NULL REFERENCES pets(id),
    quantity INTEGER NOT NULL DEFAULT 1,
    unit_price FLOAT NOT NULL,
    discount REAL,
    PRIMARY KEY (order_id, pet_id)
);
"""

NAMES = [
    "Bella",
    "Max",
    "Luna",
    "Charlie",
    "Lucy",
    "Cooper",
    "Daisy",
    "Milo",
    "Bailey",
    "Rocky",
    "Sadie",
    "Buddy",
    "Molly",
    "Tucker",
    "Stella",
    "Bear",
    "Zoe",
    "Duke",
    "Lola",
    "Leo",
    "Coco",
    "Oliver",
    "Chloe",
    "Jack",
    "Penny",
    "Teddy",
    "Nala",
    "Loki",
    "Ruby",
    "Finn",
]
SURNAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
]
BREEDS: dict[str, tuple[str, ...]] = {
    "dog": ("Labrador", "Poodle", "Beagle", "Bulldog", "German Shepherd", "Dachshund"),
    "cat": ("Siamese", "Persian", "Maine Coon", "Bengal", "Sphynx", "Ragdoll"),
    "bird": ("Parakeet", "Cockatiel", "Canary", "Lovebird"),
    "fish": ("Goldfish", "Betta", "Guppy", "Angelfish"),
    "rabbit": ("Holland Lop", "Rex", "Lionhead"),
    "hamster": ("Syrian", "Dwarf Campbell", "Roborovski"),
}
SPECIES = tuple(BREEDS)
PET_STATUSES = ("available", "available", "available", "pending", "sold")
DISCOUNTS = (0.05, 0.1, 0.15, 0.2)
ORDER_STATUSES = ("placed", "approved", "delivered", "delivered", "delivered")


@dataclass(frozen=True)
class Dataset:
    """A generated SQLite file and the row count of each of its tables."""

    kind: str  # "pets" or "multi"
    path: Path
    tables: dict[str, int]

    @property
    def total_rows(self) -> int:
        return sum(self.tables.values())


def _pet_rows(rng: random.Random, count: int, owners: int) -> Iterator[tuple[object, ...]]:
    for pet_id in range(1, count + 1):
        species = rng.choice(SPECIES)
        breed = None if rng.random() < 0.1 else rng.choice(BREEDS[species])
        age = None if rng.random() < 0.05 else round(rng.uniform(0.1, 20.0), 1)
        price = round(rng.uniform(5.0, 4000.0), 2)
        name = f"{rng.choice(NAMES)} {pet_id}"
        row: tuple[object, ...] = (
            pet_id,
            name,
            species,
            breed,
            age,
            price,
            rng.choice(PET_STATUSES),
        )
        if owners:
            owner = None if rng.random() < 0.3 else rng.randint(1, owners)
            row = (*row, owner)
        yield row


def _timestamp(rng: random.Random) -> str:
    # 2019-01-01 .. 2026-01-01 as ISO text, the way SQLite apps store CURRENT_TIMESTAMP.
    seconds = rng.randrange(0, 7 * 365 * 86400)
    days, rest = divmod(seconds, 86400)
    year = 2019 + days // 365
    day_of_year = days % 365
    month = min(12, day_of_year // 31 + 1)
    day = min(28, day_of_year % 31 + 1)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{year:04d}-{month:02d}-{day:02d} {clock}"


def _write(conn: sqlite3.Connection, sql: str, rows: Iterator[tuple[object, ...]]) -> None:
    batch: list[tuple[object, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            conn.executemany(sql, batch)
            batch.clear()
    if batch:
        conn.executemany(sql, batch)


def _build(path: Path, fill: Callable[[sqlite3.Connection], None]) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        with conn:
            fill(conn)
    finally:
        conn.close()
    tmp.replace(path)


def pets_dataset(out_dir: Path, rows: int, seed: int) -> Dataset:
    """The single `pets` table with `rows` rows (cached)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"pets-{rows}-s{seed}-v{GENERATOR_VERSION}.sqlite"
    if not path.exists():

        def fill(conn: sqlite3.Connection) -> None:
            conn.execute(PETS_DDL)
            rng = random.Random(seed)
            _write(conn, "INSERT INTO pets VALUES (?, ?, ?, ?, ?, ?, ?)", _pet_rows(rng, rows, 0))

        _build(path, fill)
    return Dataset("pets", path, {"pets": rows})


def multi_sizes(pets: int) -> dict[str, int]:
    """Row counts of the multi-table schema for a given number of pets."""
    return {
        "owners": max(1, pets // 10),
        "pets": pets,
        "orders": max(1, pets // 4),
        "order_items": 0,  # filled in by the generator: distinct (order, pet) pairs
    }


def multi_dataset(out_dir: Path, pets: int, seed: int) -> Dataset:
    """owners, pets, orders, order_items with foreign keys between them (cached)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"multi-{pets}-s{seed}-v{GENERATOR_VERSION}.sqlite"
    sizes = multi_sizes(pets)
    if not path.exists():

        def fill(conn: sqlite3.Connection) -> None:
            conn.executescript(MULTI_DDL)
            rng = random.Random(seed)
            owners = sizes["owners"]
            _write(
                conn,
                "INSERT INTO owners VALUES (?, ?, ?, ?, ?)",
                (
                    (
                        i,
                        f"{rng.choice(NAMES)} {rng.choice(SURNAMES)}",
                        f"owner{i}@example.com",
                        None if rng.random() < 0.2 else f"+1-555-{rng.randrange(10**7):07d}",
                        _timestamp(rng),
                    )
                    for i in range(1, owners + 1)
                ),
            )
            _write(
                conn,
                "INSERT INTO pets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                _pet_rows(rng, pets, owners),
            )

            def items() -> Iterator[tuple[object, ...]]:
                for order_id in range(1, sizes["orders"] + 1):
                    for pet_id in sorted(
                        rng.sample(range(1, pets + 1), k=min(pets, rng.randint(1, 6)))
                    ):
                        price = round(rng.uniform(5.0, 4000.0), 2)
                        # REAL is 8 bytes in SQLite: 0.05, 0.1, 0.15, 0.2 have no exact float4.
                        discount = None if rng.random() < 0.7 else rng.choice(DISCOUNTS)
                        yield (order_id, pet_id, rng.randint(1, 3), price, discount)

            _write(
                conn,
                "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
                (
                    (
                        i,
                        rng.randint(1, owners),
                        _timestamp(rng),
                        rng.choice(ORDER_STATUSES),
                        round(rng.uniform(5.0, 9000.0), 2),
                    )
                    for i in range(1, sizes["orders"] + 1)
                ),
            )
            _write(conn, "INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", items())

        _build(path, fill)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in sizes}
    finally:
        conn.close()
    return Dataset("multi", path, counts)


# The reference PostgreSQL schema: what a faithful migration produces for the tables above
# (types, NOT NULL, defaults, primary keys). The floor and the executemany baseline load
# into these, pre-created; foreign keys and secondary indexes are left out of both, as a
# raw load would. run.py also compares every tool's resulting column types against it.
PG_DDL: dict[str, str] = {
    "owners": """
CREATE TABLE owners (
    id bigint PRIMARY KEY,
    name varchar(100) NOT NULL,
    email varchar(200) NOT NULL,
    phone varchar(30),
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
)""",
    "pets": """
CREATE TABLE pets (
    id bigint PRIMARY KEY,
    name varchar(50) NOT NULL,
    species varchar(50) NOT NULL,
    breed varchar(50),
    age double precision,
    price double precision NOT NULL,
    status varchar(20) DEFAULT 'available'
)""",
    "pets_multi": """
CREATE TABLE pets (
    id bigint PRIMARY KEY,
    name varchar(50) NOT NULL,
    species varchar(50) NOT NULL,
    breed varchar(50),
    age double precision,
    price double precision NOT NULL,
    status varchar(20) DEFAULT 'available',
    owner_id bigint
)""",
    "orders": """
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    owner_id bigint NOT NULL,
    ordered_at timestamp NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'placed',
    total double precision NOT NULL
)""",
    "order_items": """
CREATE TABLE order_items (
    order_id bigint NOT NULL,
    pet_id bigint NOT NULL,
    quantity bigint NOT NULL DEFAULT 1,
    unit_price double precision NOT NULL,
    discount double precision,
    PRIMARY KEY (order_id, pet_id)
)""",
}


def pg_ddl(dataset_kind: str, table: str) -> str:
    """The reference CREATE TABLE for `table` in a `pets` or `multi` dataset."""
    key = "pets_multi" if dataset_kind == "multi" and table == "pets" else table
    return PG_DDL[key]


def pg_bare_ddl(dataset_kind: str, table: str) -> tuple[str, str]:
    """The reference table without its primary key (the floor's raw COPY target), and the
    ALTER TABLE that adds the key back afterwards."""
    ddl = pg_ddl(dataset_kind, table)
    match = re.search(r"PRIMARY KEY \(([^)]*)\)", ddl)
    if match:
        keys = match.group(1)
        ddl = re.sub(r",\s*PRIMARY KEY \([^)]*\)", "", ddl)
    else:
        inline = re.search(r"(\w+) \w+ PRIMARY KEY", ddl)
        if inline is None:
            msg = f"no primary key in the reference DDL of {table}"
            raise ValueError(msg)
        keys = inline.group(1)
        ddl = ddl.replace(" PRIMARY KEY", "", 1)
    return ddl, f"ALTER TABLE {table} ADD PRIMARY KEY ({keys})"
