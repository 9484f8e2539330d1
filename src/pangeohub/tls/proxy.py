"""configurable-http-proxy serving HTTPS: its command line, wrapped so that a new certificate needs no restart."""

from __future__ import annotations

import shutil
from pathlib import Path

from pangeohub.errors import PangeoError
from pangeohub.tls.store import tls_paths

LAUNCHER = Path(__file__).with_name("proxy_tls.js")


def tls_command(rt, argv: list[str]) -> list[str]:
    """``argv`` unchanged with HTTPS off; else run through proxy_tls.js with the certificate under the state dir."""
    if rt.config.hub.tls_mode == "off":
        return argv
    paths = tls_paths(rt)
    node = shutil.which("node")
    if node is None:
        raise PangeoError("node is not installed", "run the installer: sudo python3 install.py")
    chp = Path(argv[0]).resolve()  # node_modules/.bin holds a symlink; the launcher requires the real script
    return [node, str(LAUNCHER), str(chp), *argv[1:], "--ssl-key", str(paths.key), "--ssl-cert", str(paths.cert)]
