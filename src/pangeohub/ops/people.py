"""Who `check` and `loadtest` act as: temporary people the platform makes and removes, or, where it cannot make
accounts (a Slurm cluster's own site accounts), the test accounts the config names.

A temporary person logs in with a password made here and is released afterwards like any removed person
(``pangeohub.release``). A named test account logs in through the site's directory, whose password the
platform does not know: it gets an hour's API token from the hub instead (its hub user is made if needed).
Its Linux account and home are the site's: afterwards its server is stopped and nothing of the account is
removed (each phase cleans up what it wrote).
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pangeohub.accounts import Account, AccountStore
from pangeohub.errors import PangeoError
from pangeohub.hubapi import HubAPI
from pangeohub.leftovers import temporary_owner
from pangeohub.ops.prepare import prepare_accounts
from pangeohub.release import release_accounts
from pangeohub.usersim import UserSim


@dataclass
class Person:
    name: str
    password: str | None = None  # a temporary person's, made here
    token: str | None = None  # a named test account's API token

    @property
    def temporary(self) -> bool:
        return self.password is not None

    def sim(self, url: str, **kwargs) -> UserSim:
        return UserSim(url, self.name, password=self.password, token=self.token, **kwargs)


def take_people(rt, names: list[str], purpose: str, start: int = 0) -> list[Person]:
    """``len(names)`` people for ``purpose`` ('pangeohub check', 'loadtest'): made under ``names``, or the
    target's named test accounts from the ``start``-th on when it cannot make any."""
    named = rt.target.test_accounts()
    if named is None:
        return [Person(name, password=password) for name, password in create_users(rt, names, purpose).items()]
    wanted = start + len(names)
    if len(named) < wanted:
        raise PangeoError(
            f"{purpose} needs {wanted} test account(s) and target.slurm.check_users names {len(named)}: with "
            "the site's own accounts the platform cannot make people",
            f"list {wanted} existing test accounts of the site in target.slurm.check_users")
    hub = HubAPI(rt)
    people = []
    for name in named[start:wanted]:
        model = hub.ensure_user(name)
        if any((model.get("servers") or {}).values()):
            raise PangeoError(f"test account {name} has a server running: {purpose} would take it over",
                              "stop it first (the hub's admin page), or wait until it ends")
        people.append(Person(name, token=hub.token(name, f"{purpose} {secrets.token_hex(2)}", expires_in=3600)))
    return people


def give_back(rt, people: list[Person]) -> list[str]:
    """Release the temporary people; stop the named accounts' servers. What could not be done, one line each."""
    hub = HubAPI(rt)
    problems = remove_users(rt, [x.name for x in people if x.temporary])
    for person in people:
        if not person.temporary:
            try:
                hub.stop_server(person.name, timeout=120)
            except PangeoError as exc:
                problems.append(f"{person.name}: {exc.what}")
    return problems


def create_users(rt, names: list[str], purpose: str = "loadtest") -> dict[str, str]:
    """Temporary accounts, made as `pangeohub users add` makes them (store, Linux account, hub); returns
    passwords. In parallel: each password costs an argon2 hash."""
    store, api = AccountStore(rt.paths.accounts_db), HubAPI(rt)
    passwords = {name: secrets.token_urlsafe(16) for name in names}
    owner = temporary_owner()  # if the run is killed, the next `up` releases them

    def make(name: str) -> None:
        store.add(Account(name=name, info={"temporary": purpose, **owner}), passwords[name])
        api.ensure_user(name)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(make, names))
    prepare_accounts(rt, names)  # as `users add` and `users generate` do
    return passwords


def remove_users(rt, names: list[str]) -> list[str]:
    """Release users whatever state they are in, as `pangeohub users remove` does (pangeohub.release); returns
    what could not be cleaned."""
    if not names:
        return []
    return [problem for released in release_accounts(rt, names, hub=HubAPI(rt)) for problem in released.problems]
