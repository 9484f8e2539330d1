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
A user is found by name with one query of their id and then from the session (``_find_user``), and the tokens
the platform gives the hub (services', the CLI's) are checked with one hash, not 16,384 (``PangeoHub``).
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


def _find_user(cls, db, name):
    """``orm.User.find`` without reloading what the session holds.

    Upstream's ``query(User).filter(name == name).first()`` runs the user's three ``selectin`` relationships
    (roles, groups, shares) again as four queries, even for a user the session already holds, and every request
    finds its user by name (``BaseHandler.find_user``): 13 % of the hub's event loop at 300 arrivals. Asking only
    for the id and taking the user from the session's identity map returns the same object with one small query;
    a user the session does not hold yet is loaded by ``Session.get`` with its relationships, as before.
    """
    user_id = db.query(cls.id).filter(cls.name == name).scalar()
    return None if user_id is None else db.get(cls, user_id)


def _hub_class():
    from jupyterhub import orm
    from jupyterhub.app import JupyterHub

    class PangeoHub(JupyterHub):
        """JupyterHub, with the tokens the platform gives it checked as the random keys they are.

        Upstream hashes a token from its config 16,384 times (``trust_user_provided_tokens``: they might be
        passwords), ~3 ms of the hub's event loop at every request made with one (the CLI, the load test's probe,
        the services). The platform's tokens are 256 random bits (``pangeohub.secrets``), so the rendered config
        trusts them and new ones are stored with one hash, as tokens the hub makes itself are; those stored
        stretched by an older config are removed here so that upstream stores them again from the config.
        """

        async def init_api_tokens(self):
            if self.trust_user_provided_tokens:
                stretched = self.db.query(orm.APIToken).filter(
                    orm.APIToken.note == "from config",
                    orm.APIToken.hashed.like(f"{orm.APIToken.algorithm}:{orm.APIToken.rounds}:%"))
                for token in stretched:
                    self.db.delete(token)
                self.db.commit()
            await super().init_api_tokens()

    return PangeoHub


def main() -> None:
    from jupyterhub import orm

    orm.register_ping_connection = _ping_unless_sqlite(orm.register_ping_connection)
    orm.User.find = classmethod(_find_user)
    jupyterhub = _hub_class().launch_instance

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
