#!/usr/bin/env python3
"""How long an upgrade takes, and how long people's running servers cannot be reached through the hub meanwhile.

    sudo /opt/pangeohub/bin/python benchmarks/upgrade.py [--people 3] [--from COMMIT]

Installs ``--from`` (an earlier commit of this repository) with its own installer into a throw-away prefix,
starts it with ``--people`` people whose servers run, then runs this checkout's installer against it while a
thread asks each running server for its status through the proxy every 0.2 s. Prints, in seconds: the earlier
install, the upgrade end to end and each of its steps (as the installer reports them), the longest time any
server went unanswered, and a rerun of the installer at the same version.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from harness import Platform  # noqa: E402
from pangeohub.usersim import UserSim, run_sync  # noqa: E402


class Watch(threading.Thread):
    """Polls each server's /api/status through the proxy; records the longest stretch without an answer."""

    def __init__(self, url: str, tokens: dict[str, str]):
        super().__init__(daemon=True)
        self.url, self.tokens = url, tokens
        self.longest = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        last_ok = {name: time.monotonic() for name in self.tokens}
        while not self.done.is_set():
            for name, token in self.tokens.items():
                request = urllib.request.Request(f"{self.url}/user/{name}/api/status",
                                                 headers={"Authorization": f"token {token}"})
                try:
                    with urllib.request.urlopen(request, timeout=1):
                        now = time.monotonic()
                        self.longest = max(self.longest, now - last_ok[name])
                        last_ok[name] = now
                except OSError:
                    pass
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=3)
    parser.add_argument("--from", dest="commit", default="bc55624999b7e9b089f25cfaa95a1d40c9bc1e47")
    opts = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pangeohub-upgrade-bench-", dir="/var/tmp"))
    root.chmod(0o755)
    source, prefix = root / "earlier", root / "prefix"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", opts.commit], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    figures: dict = {"from": opts.commit, "people": opts.people}
    began = time.monotonic()
    subprocess.run(["/usr/bin/python3", str(source / "install.py"), "--no-start", "--prefix", str(prefix)],
                   check=True, capture_output=True)
    figures["earlier_install_s"] = round(time.monotonic() - began, 1)
    hub = Platform({"install_dir": str(prefix)})
    del hub.config_data["storage"]["ports"]  # the earlier `weed shell` finds gRPC only at port + 10000
    hub.config_path.write_text(json.dumps(hub.config_data))
    old = [str(prefix / "bin" / "pangeohub"), "--config", str(hub.config_path)]
    try:
        subprocess.run(old + ["up", "--detach"], check=True, capture_output=True)
        tokens = {}
        for index in range(opts.people):
            name, password = f"p{index}", f"p{index}-passphrase"
            subprocess.run(old + ["users", "add", name, "--password-stdin"], input=password + "\n", text=True,
                           check=True, capture_output=True)

            async def start(name=name, password=password):
                async with UserSim(hub.url, name, password=password, timeout=180) as user:
                    await user.login()
                    await user.start_server()

            run_sync(start())
            tokens[name] = subprocess.run(old + ["token", name], check=True, capture_output=True,
                                          text=True).stdout.strip()
        watch = Watch(hub.url, tokens)
        watch.start()
        installer = ["/usr/bin/python3", str(REPO / "install.py"), "--prefix", str(prefix), "--config",
                     str(hub.config_path), "--backup-to", str(root / "backups")]
        began = time.monotonic()
        out = subprocess.run(installer, check=True, capture_output=True, text=True).stdout
        figures["upgrade_s"] = round(time.monotonic() - began, 1)
        time.sleep(2)
        watch.done.set()
        watch.join()
        figures["longest_server_unanswered_s"] = round(watch.longest, 1)
        titles = re.findall(r"^==> (.+?) \.\.\.$", out, re.M)
        seconds = re.findall(r"^    .*\(([\d.]+)s\)$", out, re.M)
        figures["steps_s"] = dict(zip(titles, map(float, seconds)))
        began = time.monotonic()
        rerun = subprocess.run(installer, check=True, capture_output=True, text=True).stdout
        figures["rerun_s"] = round(time.monotonic() - began, 1)
        figures["rerun_restarted_nothing"] = "nothing restarted" in rerun
    finally:
        hub.close()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
