"""`--target-file PATH`: the target URL read from a file (a mounted Secret), so the password
appears in no process list; errors name the file and never print its content."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.migration.conftest import query, run_cli, run_subprocess

PETS = """
CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO pets VALUES (1, 'Rex'), (2, 'Zoë');
"""


def test_run_reads_the_target_url_from_the_file_stripped_of_whitespace(make_db, target, tmp_path):
    url_file = tmp_path / "url"
    url_file.write_text(f"\n  {target}\n\n", encoding="utf-8")
    res = run_subprocess(
        "run", "--source", make_db(PETS), "--target-file", str(url_file), "--verify",
        env={"DATABASE_URL": ""},
    )  # fmt: skip
    assert res.code == 0, res.text
    assert query(target, "SELECT id, name FROM pets ORDER BY id") == [(1, "Rex"), (2, "Zoë")]
    password = urlsplit(target).password
    assert password
    assert password not in res.text


def test_verify_accepts_the_target_file_too(make_db, target, tmp_path):
    src = make_db(PETS)
    assert run_cli("run", "--source", src, "--target", target).code == 0
    url_file = tmp_path / "url"
    url_file.write_text(target, encoding="utf-8")
    res = run_cli("verify", "--source", src, "--target-file", str(url_file))
    assert res.code == 0, res.text


def test_a_missing_file_is_a_usage_error_naming_it(make_db, tmp_path):
    missing = tmp_path / "no-such-secret"
    res = run_cli("run", "--source", make_db(PETS), "--target-file", str(missing))
    assert res.code == 2
    assert res.messages("failed") == [
        f"--target-file {missing}: cannot read it (No such file or directory)"
    ]


def test_an_empty_file_is_a_usage_error_naming_it(make_db, tmp_path):
    empty = tmp_path / "url"
    empty.write_text(" \n\t\n", encoding="utf-8")
    res = run_cli("run", "--source", make_db(PETS), "--target-file", str(empty))
    assert res.code == 2
    assert res.messages("failed") == [
        f"--target-file {empty}: the file is empty; expected a postgresql:// URL"
    ]


def test_a_file_that_is_not_text_is_refused_without_echoing_it(make_db, tmp_path):
    binary = tmp_path / "url"
    binary.write_bytes(b"postgresql://u:s3cr\xffet@h/db")
    res = run_cli("run", "--source", make_db(PETS), "--target-file", str(binary))
    assert res.code == 2
    assert res.messages("failed") == [f"--target-file {binary}: not UTF-8 text; expected a URL"]
    assert "s3cr" not in res.text


def test_target_and_target_file_together_are_refused(make_db, tmp_path):
    url_file = tmp_path / "url"
    url_file.write_text("postgresql://u@h/db", encoding="utf-8")
    res = run_subprocess(
        "run", "--source", make_db(PETS), "--target", "postgresql://u@h/db",
        "--target-file", str(url_file),
    )  # fmt: skip
    assert res.code == 2
    assert "argument --target-file: not allowed with argument --target" in res.err
