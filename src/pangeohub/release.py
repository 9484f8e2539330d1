"""Releasing a person: everything the platform made for them goes, through this one function.

Every path that removes an account (``users remove``, ``users deny``, ``check``, ``loadtest``, the test suite's
fixtures) calls ``release_account``. Linux reuses a removed account's uid for the next one it makes, so a
home image left mounted, an image file or a runtime dir left behind would be handed, files and quota, to the
next new person: nothing of the old account may survive its removal. ``pangeohub.leftovers`` finds what an
interrupted run (a killed ``check``, a killed supervisor) left anyway, and releases it through the same steps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pangeohub.config.model import LINUX_NAME_RE
from pangeohub.errors import PangeoError
from pangeohub.names import system_name


@dataclass
class Released:
    """What ``release_account`` found and removed (for the command's message and the tests)."""

    name: str
    store: bool = False
    hub: bool = False
    linux: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def existed(self) -> bool:
        return self.store or self.hub or self.linux


def release_account(rt, name: str, *, hub=None, keep_home: bool = False) -> Released:
    """Remove ``name`` everywhere: hub user and server (when ``hub``, a HubAPI, is given), account store,
    scratch identity (and objects unless ``keep_home``), the environment recorded for their Dask workers, every
    process of their Linux account, the account itself, the home (unmounted; image and directory deleted
    unless ``keep_home``), the Jupyter runtime dir and the cgroup.

    With ``keep_home`` the Linux account and the home image stay (the person can be added again and finds
    their files); nothing of theirs keeps running. Steps that fail are reported in ``problems``; the others
    still run, so that one stuck step does not leave the rest behind.
    """
    from pangeohub.accounts import AccountStore
    from pangeohub.gateway.userenv import userenv_file
    from pangeohub.storage.admin import forget_user

    out = Released(name)
    if not LINUX_NAME_RE.match(name or ""):
        return out  # no account can have been made under a name every way in refuses (and it names no path)
    config = rt.config
    linux = system_name(name, config.users.system_prefix)
    # Said before anything is removed: a removal cut short (a killed command) is finished at the next `up`.
    marker = releasing_marker(config, linux)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"name": name, "keep_home": keep_home}) + "\n")

    def step(what: str, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except PangeoError as exc:
            out.problems.append(f"{name}: {what}: {exc.what}")
        except OSError as exc:
            out.problems.append(f"{name}: {what}: {exc}")
        return None

    if hub is not None:
        out.hub = bool(step("hub user", hub.delete_user, name, timeout=120))
    out.store = AccountStore(rt.paths.accounts_db).remove(name)
    step("scratch", forget_user, rt, name, delete_data=not keep_home)
    userenv_file(config.state_dir, name).unlink(missing_ok=True)
    # The rest is the target's: on one machine every process, the account, the home (image, mount, cgroup);
    # a Slurm site's own accounts are the site's, and nothing of them is touched.
    out.linux = rt.target.release_person(name, keep_home, step)
    if not out.problems:
        marker.unlink(missing_ok=True)
    return out


def releasing_marker(config, linux: str) -> Path:
    """Present while ``linux``'s removal is under way (and after one that did not finish): which hub user, and
    whether their home is kept, so that the next `up` finishes the removal that was asked for."""
    return config.state_dir / "run" / "releasing" / linux


def read_marker(path: Path) -> tuple[str, bool] | None:
    try:
        data = json.loads(path.read_text())
        return str(data["name"]), bool(data.get("keep_home"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def release_accounts(rt, names: list[str], *, hub=None, workers: int = 8) -> list[Released]:
    """``release_account`` for many (a load test's people), side by side."""
    from concurrent.futures import ThreadPoolExecutor

    if not names:
        return []
    with ThreadPoolExecutor(min(workers, len(names))) as pool:
        return list(pool.map(lambda name: release_account(rt, name, hub=hub), names))
