"""Failed-login lockout per (name, client address): an attacker cannot lock the owner out, nor escape it by
claiming other addresses in forwarding headers. Logins come from other loopback addresses (all of 127/8 is
local), so the proxy sees a different client for each."""

import pytest

from pangeohub.accounts import LoginRecord
from pangeohub.auth import throttle
from pangeohub.usersim import SimError, UserSim, run_sync

pytestmark = pytest.mark.platform


def outcome(platform, name, password, source, headers=None) -> str:
    async def go():
        async with UserSim(platform.url, name, password=password, source_address=source, headers=headers) as sim:
            try:
                await sim.login()
            except SimError as exc:
                return "refused" if "refused" in str(exc) else str(exc)
        return "accepted"

    return run_sync(go())


def fail(platform, name, source, times, headers=None):
    for _ in range(times):
        assert outcome(platform, name, "not-the-password", source, headers) == "refused"


def test_wrong_passwords_from_one_address_do_not_lock_the_owner_out_from_another(platform):
    name, password = platform.add_user()
    limit = platform.rt.config.auth.failed_login_limit
    fail(platform, name, "127.0.0.2", limit)
    assert outcome(platform, name, password, "127.0.0.2") == "refused"  # the attacker's address is locked
    assert outcome(platform, name, password, "127.0.0.3") == "accepted"  # the owner, elsewhere, is not
    log = platform.rt.paths.log("hub").read_text()
    assert f"Login lockout: '{name}' from 127.0.0.2 locked for 60s after {limit} failed logins" in log


def test_forged_forwarding_headers_do_not_give_each_guess_a_new_address(platform):
    """tornado lets a client's own X-Real-Ip replace the address the proxy saw; guesses that each claim a new
    one still count against the address they really come from."""
    name, password = platform.add_user()
    limit = platform.rt.config.auth.failed_login_limit
    for step in range(limit):
        forged = {"X-Real-Ip": f"10.9.8.{step}", "X-Forwarded-For": f"10.7.6.{step}"}
        assert outcome(platform, name, "not-the-password", "127.0.0.4", forged) == "refused"
    forged = {"X-Real-Ip": "10.9.8.200", "X-Forwarded-For": "10.7.6.200"}
    assert outcome(platform, name, password, "127.0.0.4", forged) == "refused"
    assert outcome(platform, name, password, "127.0.0.5") == "accepted"


def test_guessing_from_many_addresses_leaves_the_owners_own_address_open(platform):
    name, password = platform.add_user()
    limit = platform.rt.config.auth.failed_login_limit
    assert outcome(platform, name, password, "127.0.0.6") == "accepted"  # where the owner usually logs in
    for attacker in range(throttle.NAME_CEILING):
        fail(platform, name, f"127.0.1.{attacker + 1}", limit)
    assert outcome(platform, name, password, "127.0.2.1") == "refused"  # a new address: the name is locked there
    assert outcome(platform, name, password, "127.0.0.6") == "accepted"  # the owner's known address is not
    assert f"Login lockout: '{name}' has {limit * throttle.NAME_CEILING} failed logins" in (
        platform.rt.paths.log("hub").read_text())


def test_the_lock_of_an_address_doubles_with_each_further_failure_up_to_the_window():
    def locked_for(failures: int) -> float:
        record = LoginRecord(failures_here=[1000.0] * failures, failures_total=failures, known_address=False)
        return throttle.pair_locked_until(record, limit=10, window=900.0) - 1000.0

    assert [locked_for(n) for n in (9, 10, 11, 12, 14, 20)] == [-1000.0, 60.0, 120.0, 240.0, 900.0, 900.0]


ATTACK = """
import json, sys
from pangeohub.usersim import SimError, UserSim, run_sync

url, name, attempts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])

async def one(password, forwarded):
    async with UserSim(url, name, password=password, headers={"X-Forwarded-For": forwarded}) as sim:
        try:
            await sim.login()
        except SimError as exc:
            return "refused" if "refused" in str(exc) else str(exc)
    return "accepted"

print(json.dumps([run_sync(one(password, forwarded)) for password, forwarded in attempts]))
"""


def attack_from_account(platform, account: str, name: str, attempts: list[tuple[str, str]]) -> list[str]:
    """Logins sent by an ordinary account of the machine (any person's kernel) straight to the hub's own port,
    each claiming the client address it likes; what the hub answered to each."""
    import json
    import subprocess
    import sys

    hub = f"http://127.0.0.1:{platform.rt.config.hub.internal_port}"
    proc = subprocess.run(["runuser", "-u", account, "--", sys.executable, "-c", ATTACK, hub, name,
                           json.dumps(attempts)], capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_local_account_cannot_forge_its_address_on_the_hubs_own_port(platform):
    """Straight to the hub, every guess claims a new address: all of them count against the real one."""
    attacker, _ = platform.started_user()
    victim, password = platform.add_user()
    limit = platform.rt.config.auth.failed_login_limit
    attempts = [("not-the-password", f"10.1.2.{step}") for step in range(limit)] + [(password, "10.1.2.250")]
    answers = attack_from_account(platform, platform.prefix + attacker, victim, attempts)
    assert answers == ["refused"] * (limit + 1)  # the right password too: the real address is locked
    assert outcome(platform, victim, password, "127.0.0.9") == "accepted"  # the owner, through the proxy


def test_a_local_account_cannot_lock_a_person_out_by_claiming_their_address(platform):
    attacker, _ = platform.started_user()
    victim, password = platform.add_user()
    limit = platform.rt.config.auth.failed_login_limit
    owners_address = "127.0.0.10"
    attack_from_account(platform, platform.prefix + attacker, victim,
                        [("not-the-password", owners_address)] * (limit + 2))
    assert outcome(platform, victim, password, owners_address) == "accepted"
