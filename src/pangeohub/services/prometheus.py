"""The platform's Prometheus (``monitoring.prometheus``), supervised like the other services.

Debian's ``prometheus`` binary, started after the hub (it scrapes the usage service the hub runs); its data in
``<state_dir>/prometheus``; it keeps the service token the hub knows it by in a 0600 file there. Restarting it
loses nothing but the scrapes it misses, so the supervisor may do so freely.
"""

from __future__ import annotations

import base64
import json
import shutil
import warnings

from pangeohub.errors import PangeoError
from pangeohub.render.prometheus import USER, command, render_prometheus, render_web_config
from pangeohub.secrets import write_private
from pangeohub.services.base import Service, http_ok

BINARY = "prometheus"
SEARCH_PATH = "/usr/bin:/usr/sbin:/usr/local/bin"  # where Debian's package (or an operator's build) puts it


def bcrypt_hash(password: str) -> str:
    """Prometheus's web config takes bcrypt hashes; glibc's crypt makes them (no extra package)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # `crypt` leaves Python in 3.13; Debian 12 has 3.11
        import crypt
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))


class PrometheusService(Service):
    name = "prometheus"
    restart_dependants = False  # nothing holds state about it
    start_timeout = 60.0
    search_path = SEARCH_PATH

    @property
    def port(self) -> int:
        return self.rt.config.monitoring.port

    @property
    def root(self):
        return self.rt.paths.prometheus

    def binary(self) -> str:
        found = shutil.which(BINARY, path=self.search_path)
        if found is None:
            raise PangeoError(
                f"monitoring.prometheus is true but Prometheus is not installed (no prometheus in {self.search_path})",
                "install Debian's package (`sudo apt-get install --no-install-recommends prometheus`), or run "
                "`sudo python3 install.py` again: it installs it when the config turns monitoring.prometheus on; "
                "or set monitoring.prometheus: false",
            )
        return found

    def prepare(self) -> None:
        self.binary()
        self.root.mkdir(mode=0o700, exist_ok=True)
        self.root.chmod(0o700)
        token_file = self.root / "token"
        write_private(token_file, self.rt.secret("prometheus_token") + "\n")
        write_private(self.root / "prometheus.yml",
                      json.dumps(render_prometheus(self.rt.config, token_file), indent=2) + "\n")
        write_private(self.root / "web.yml",
                      json.dumps(render_web_config(bcrypt_hash(self.rt.secret("prometheus_password")))) + "\n")

    def command(self) -> list[str]:
        return command(self.binary(), self.rt.config, self.root / "prometheus.yml", self.root / "web.yml",
                       self.root / "data")

    def cwd(self):
        return self.root

    def auth_header(self) -> dict[str, str]:
        pair = f"{USER}:{self.rt.secret('prometheus_password')}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}

    def probe(self) -> bool:
        return http_ok(f"http://127.0.0.1:{self.port}/-/ready", headers=self.auth_header())
