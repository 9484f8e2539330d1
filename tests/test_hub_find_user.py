"""The hub finds a user by name as upstream does, without reloading what its session already holds."""

import pytest
import sqlalchemy
from jupyterhub import orm

from pangeohub.hub.launch import _find_user


@pytest.fixture
def db():
    session = orm.new_session_factory("sqlite:///:memory:")()
    yield session
    session.close()


def _statements(db) -> list[str]:
    seen: list[str] = []
    sqlalchemy.event.listen(db.bind, "before_cursor_execute", lambda conn, cur, statement, *a: seen.append(statement))
    return seen


def test_finds_the_object_the_session_holds_with_its_current_roles_and_groups(db):
    alice = orm.User(name="alice")
    db.add_all([alice, orm.User(name="bob"), orm.Role(name="teacher"), orm.Group(name="class")])
    db.commit()
    alice.roles.append(orm.Role.find(db, "teacher"))
    alice.groups.append(orm.Group.find(db, "class"))
    db.commit()

    assert orm.User.find(db, "alice") is alice  # upstream's (reloading roles, groups and shares)
    seen = _statements(db)
    found = _find_user(orm.User, db, "alice")
    assert found is alice
    assert [r.name for r in found.roles] == ["teacher"] and [g.name for g in found.groups] == ["class"]
    assert len(seen) == 1, seen  # the id, nothing reloaded
    assert _find_user(orm.User, db, "bob").name == "bob"


def test_missing_renamed_and_deleted_users(db):
    db.add(orm.User(name="carol"))
    db.commit()
    assert _find_user(orm.User, db, "nobody") is None
    carol = _find_user(orm.User, db, "carol")
    carol.name = "caroline"  # not committed yet: the query flushes first, as upstream's does
    assert _find_user(orm.User, db, "caroline") is carol and _find_user(orm.User, db, "carol") is None
    db.delete(carol)
    db.commit()
    assert _find_user(orm.User, db, "caroline") is None


def test_a_user_not_held_by_the_session_is_loaded_with_its_relationships(db):
    db.add_all([orm.User(name="dan"), orm.Group(name="lab")])
    db.commit()
    dan = orm.User.find(db, "dan")
    dan.groups.append(orm.Group.find(db, "lab"))
    db.commit()
    db.expunge_all()  # as after a restart: nothing held
    del dan
    found = _find_user(orm.User, db, "dan")
    assert found is not None and [g.name for g in found.groups] == ["lab"]
