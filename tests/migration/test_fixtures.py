"""The test fixtures themselves: a password never reaches a failure report."""

from __future__ import annotations

from urllib.parse import urlsplit

from migration.embedded import Server
from tests.migration.conftest import PgServer, SecretURL


def test_secret_url_repr_hides_the_password_but_the_value_is_the_real_url():
    url = SecretURL("postgresql://postgres:pa%2Fss@127.0.0.1:5432/t_1")
    assert repr(url) == "'postgresql://postgres:***@127.0.0.1:5432/t_1'"
    assert str(url) == "postgresql://postgres:pa%2Fss@127.0.0.1:5432/t_1"
    assert f"{url}" == str(url)  # what psycopg and the CLI receive


def test_database_fixtures_are_secret_urls(target, pg_server):
    assert type(target) is SecretURL
    assert type(pg_server.admin_url) is SecretURL
    password = urlsplit(target).password or ""
    assert password == "" or password not in repr(target) + repr(pg_server)


def test_secret_url_without_a_password_is_shown_unchanged():
    assert repr(SecretURL("postgresql://postgres@127.0.0.1:5432/db")) == (
        "'postgresql://postgres@127.0.0.1:5432/db'"
    )


def test_embedded_server_repr_leaves_out_its_password(tmp_path):
    server = Server(tmp_path, 5432, "s3cret-pw", None)
    holder = PgServer(SecretURL(server.url()), server)
    assert "s3cret-pw" not in repr(server)
    assert "s3cret-pw" not in repr(holder)
