"""Small helpers shared by the access tests: a login attempt as a person sees it."""

from __future__ import annotations

from pangeohub.usersim import SimError, UserSim, run_sync


def login_outcome(url: str, name: str, password: str) -> str:
    """'accepted', or the refusal the person sees (with their own name blanked out, to compare refusals)."""

    async def attempt():
        async with UserSim(url, name, password=password) as sim:
            try:
                await sim.login()
            except SimError as exc:
                return str(exc).replace(name, "<name>")
            return "accepted"

    return run_sync(attempt())


def login_token(url: str, name: str, password: str) -> str:
    async def go():
        async with UserSim(url, name, password=password) as sim:
            await sim.login()
            return sim.token

    return run_sync(go())
