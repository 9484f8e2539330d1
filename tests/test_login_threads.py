"""A login never waits for the hub's default thread pool, which spawn preparation (home mounts, storage
identities) can fill during a burst: the password check and the account store run in threads of their own."""

import asyncio
import threading

from pangeohub.accounts import Account, AccountStore
from pangeohub.hub.auth import PangeoAuthenticator


def test_a_login_completes_while_every_default_thread_is_busy(tmp_path):
    store = AccountStore(tmp_path / "accounts.sqlite")
    store.add(Account(name="ada"), "a long enough password")
    auth = PangeoAuthenticator(accounts_db=str(tmp_path / "accounts.sqlite"), system_prefix="")

    async def burst():
        loop = asyncio.get_running_loop()
        release = threading.Event()
        # More blocked jobs than the default pool has threads: anything queued there waits for `release`.
        blocked = [loop.run_in_executor(None, release.wait) for _ in range(64)]
        try:
            good = await asyncio.wait_for(auth.authenticate(None, {"username": "ada",
                                                                   "password": "a long enough password"}), 60)
            wrong = await asyncio.wait_for(auth.authenticate(None, {"username": "ada", "password": "guess"}), 60)
            return good, wrong
        finally:
            release.set()
            await asyncio.gather(*blocked)

    good, wrong = asyncio.run(burst())
    assert good["name"] == "ada" and wrong is None
