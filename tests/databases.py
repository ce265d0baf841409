"""Fresh, empty databases for tests: a new SQLite file, or a new PostgreSQL database."""

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from stageline.store.database import normalize_url


@contextmanager
def fresh_postgres(admin_url: str) -> Iterator[str]:
    """A new database on the server of `admin_url`, dropped (connections and all) afterwards."""
    url = make_url(normalize_url(admin_url))
    name = f"stageline_test_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def sibling_database(database_url: str, directory: Path) -> Iterator[str]:
    """An empty database of the same kind, and on the same server, as `database_url`."""
    url = make_url(normalize_url(database_url))
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{directory / f'sibling-{secrets.token_hex(4)}.db'}"
        return
    with fresh_postgres(url.set(database="postgres").render_as_string(hide_password=False)) as new:
        yield new
