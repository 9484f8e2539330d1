"""The hub-managed service that ends accounts when their expiry date passes.

A login refused at the door is not enough: a workshop attendee's server (and whatever it runs), their API
tokens, their sessions and their Dask clusters would go on after the workshop. Every ``--every`` seconds this
ends, once, each account whose date has passed since it was last ended (``pangeohub.auth.ending``): servers,
Dask clusters, every token, every session and every process of its Linux account, whether or not a server ran.
Homes are kept.

Run by JupyterHub as a managed service (``JUPYTERHUB_API_URL`` and ``JUPYTERHUB_API_TOKEN`` come from it).
"""

from __future__ import annotations

import os

HUB_PID = os.getppid()  # read first thing: the hub may die while the heavier imports below run

import argparse  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from pangeohub.accounts import AccountStore  # noqa: E402
from pangeohub.auth import workshop  # noqa: E402
from pangeohub.auth.ending import GatewayAdmin, end_person  # noqa: E402
from pangeohub.config.model import UsersSection  # noqa: E402
from pangeohub.hubapi import HubAPI  # noqa: E402

SERVICE = "pangeohub-expiry"
# Servers stopped, tokens listed and deleted (``tokens``), sessions ended (``admin:users``, which the sessions
# API of pangeohub.auth.sessions asks for).
SCOPES = ["list:users", "read:users", "read:servers", "admin:servers", "tokens", "admin:users"]
log = logging.getLogger(SERVICE)


def sweep(store: AccountStore, users: UsersSection | None, gateway: GatewayAdmin | None = None) -> list[str]:
    """End the accounts whose date has passed since they were last ended; returns whose."""
    names = workshop.not_yet_ended(store)
    if not names:
        return []
    api = HubAPI(url=os.environ["JUPYTERHUB_API_URL"], token=os.environ["JUPYTERHUB_API_TOKEN"])
    ended = []
    for name in names:
        outcome = end_person(api, name, gateway=gateway, users=users)
        if outcome.problems:  # tried again at the next round
            log.warning("account %s expired, not everything ended: %s", name, "; ".join(outcome.problems))
            continue
        workshop.mark_ended(store, name)
        ended.append(name)
        log.info("account %s expired: %d server(s), %d cluster(s), %d token(s) and its sessions ended; home kept",
                 name, outcome.servers, outcome.clusters, outcome.tokens)
    return ended


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts-db", required=True)
    parser.add_argument("--system-prefix", required=True)
    parser.add_argument("--every", type=float, default=60.0)
    parser.add_argument("--site-accounts", action="store_true",
                        help="People are a site's own accounts: their processes are the site's to end.")
    parser.add_argument("--gateway-admin-url", help="The gateway's operator API, to stop people's clusters.")
    parser.add_argument("--gateway-token-file", help="File holding the operator API's token.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(name)s %(asctime)s] %(message)s")
    store = AccountStore(args.accounts_db)
    users = None if args.site_accounts else UsersSection(system_prefix=args.system_prefix)
    gateway = (GatewayAdmin(args.gateway_admin_url, Path(args.gateway_token_file))
               if args.gateway_admin_url and args.gateway_token_file else None)
    hub = HUB_PID
    # The hub starts this in a session of its own, so a hub that is killed (not stopped) leaves it behind:
    # it ends itself once its hub is gone, and never creates an account store that is not there.
    while os.getppid() == hub != 1:
        try:
            if store.path.exists():
                sweep(store, users, gateway)
        except Exception as exc:  # the hub restarting, a locked database: try again next round
            log.warning("expiry sweep failed: %s", exc)
        time.sleep(args.every)
    log.info("the hub (pid %s) is gone: stopping", hub)


if __name__ == "__main__":
    main()
