"""The expiry service never outlives its hub, and never makes an account store of its own."""

import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.platform


def test_expiry_service_ends_when_its_hub_is_killed_and_creates_nothing(tmp_path):
    db = tmp_path / "gone" / "accounts.sqlite"
    # A stand-in "hub" that starts the service, as JupyterHub does, then dies without stopping it.
    hub = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-m', 'pangeohub.auth.expiry', '--accounts-db', {str(db)!r},"
        " '--system-prefix', 'px-', '--every', '0.2'], start_new_session=True,"
        " env={'JUPYTERHUB_API_URL': 'http://127.0.0.1:9/hub/api', 'JUPYTERHUB_API_TOKEN': 'x'})\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(3600)\n"
    )], stdout=subprocess.PIPE, text=True)
    service = int(hub.stdout.readline())
    hub.kill()
    hub.wait()
    for _ in range(300):
        try:
            os.kill(service, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(service, 9)
        pytest.fail("the expiry service outlived its hub")
    assert not db.parent.exists()
