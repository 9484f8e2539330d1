"""The hub-managed service that ends accounts when their expiry date passes.

A login refused at the door is not enough: a workshop attendee's server (and whatever it runs) would go on
after the workshop. Every ``--every`` seconds this asks the hub (its REST API, with a role that may only
list users and stop servers) which users have servers running, and stops those of expired accounts; any
process left running as their Linux account is ended too. Homes are kept.

Run by JupyterHub as a managed service (``JUPYTERHUB_API_URL`` and ``JUPYTERHUB_API_TOKEN`` come from it).
"""

from __future__ import annotations

import os

HUB_PID = os.getppid()  # read first thing: the hub may die while the heavier imports below run

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
import urllib.request  # noqa: E402

from pangeohub.accounts import AccountStore  # noqa: E402
from pangeohub.auth.workshop import expired  # noqa: E402
from pangeohub.config.model import UsersSection  # noqa: E402
from pangeohub.targets.sysusers import lock_account  # noqa: E402

SERVICE = "pangeohub-expiry"
SCOPES = ["list:users", "read:users", "read:servers", "admin:servers"]
log = logging.getLogger(SERVICE)


def _api(method: str, path: str):
    request = urllib.request.Request(
        os.environ["JUPYTERHUB_API_URL"].rstrip("/") + path, method=method,
        headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else None


def sweep(store: AccountStore, users: UsersSection) -> list[str]:
    """Stop the servers of expired accounts; returns whose."""
    ended = set(expired(store))
    if not ended:
        return []
    stopped = []
    for user in _api("GET", "/users?state=active") or []:
        if user["name"] not in ended:
            continue
        for server in user.get("servers", {}):
            path = f"/users/{urllib.parse.quote(user['name'])}/" + (
                f"servers/{urllib.parse.quote(server)}" if server else "server")
            _api("DELETE", path)
        stopped.append(user["name"])
    for name in stopped:
        for _ in range(60):  # let the spawner stop it cleanly before anything else is ended
            model = _api("GET", f"/users/{urllib.parse.quote(name)}")
            if not model.get("servers"):
                break
            time.sleep(0.5)
        lock_account(name, users)
        log.info("account %s expired: server stopped, home kept", name)
    return stopped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts-db", required=True)
    parser.add_argument("--system-prefix", required=True)
    parser.add_argument("--every", type=float, default=60.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(name)s %(asctime)s] %(message)s")
    store = AccountStore(args.accounts_db)
    users = UsersSection(system_prefix=args.system_prefix)
    hub = HUB_PID
    # The hub starts this in a session of its own, so a hub that is killed (not stopped) leaves it behind:
    # it ends itself once its hub is gone, and never creates an account store that is not there.
    while os.getppid() == hub != 1:
        try:
            if store.path.exists():
                sweep(store, users)
        except Exception as exc:  # the hub restarting, a locked database: try again next round
            log.warning("expiry sweep failed: %s", exc)
        time.sleep(args.every)
    log.info("the hub (pid %s) is gone: stopping", hub)


if __name__ == "__main__":
    main()
