"""The hub process: JupyterHub's own command, with its SQLite database committing without an fsync each time.

JupyterHub commits its database (servers, tokens, activity) on its event loop's thread, and in SQLite's default
rollback journal each commit waits for several fsyncs. In a burst of 300 arriving people, py-spy found the hub's
loop in commit for ~13% of its samples while home images were being written to the same disk: every page and
API request waited behind those fsyncs. In write-ahead-log mode with synchronous=NORMAL a commit goes to the
operating system and SQLite fsyncs at checkpoints: a crashed or killed hub (or the whole platform killed at once)
loses nothing; a power cut may lose the last moments of activity records, never the database's consistency.
Nor does it "ping" SQLite: upstream runs ``SELECT 1`` in a transaction every time it takes a connection from the
pool, which guards against a database server that dropped an idle connection; a SQLite file has no connection to
drop, and at 300 arrivals the pings were ~4 % of the hub's loop. Other databases keep upstream's ping.
Once JupyterHub has shut down, the process ends without the interpreter's teardown (``pangeohub.quickexit``).
"""

from __future__ import annotations

import sqlite3
import sys

from sqlalchemy import event
from sqlalchemy.engine import Engine


@event.listens_for(Engine, "connect")
def _commit_without_fsync(dbapi_connection, _record) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def _ping_unless_sqlite(upstream):
    def register(engine) -> None:
        if engine.dialect.name != "sqlite":
            upstream(engine)
    return register


def main() -> None:
    from jupyterhub import orm
    from jupyterhub.app import main as jupyterhub

    orm.register_ping_connection = _ping_unless_sqlite(orm.register_ping_connection)

    from pangeohub.quickexit import exit_now

    try:
        jupyterhub()
    except SystemExit as exc:  # JupyterHub's own exits (a bad config, a port in use) keep their code and message
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
            exit_now(1)
        exit_now(exc.code or 0)
    exit_now(0)


if __name__ == "__main__":
    main()
