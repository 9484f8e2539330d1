"""Admin commands run in the hub pod: `pangeohub exec kubernetes -- users add alice`.

Accounts, tokens and the hub's state live in the hub pod's volume, and the config is mounted there where the
CLI looks (hubvalues: /etc/pangeohub/config.yaml), so every admin command works unchanged inside the pod. This
runs it there with `kubectl exec`, with the operator's terminal attached the way the local command would see
it: a prompt (a password typed twice) when the operator is at a terminal, stdin passed through otherwise
(`--password-stdin`, a piped list of names). The argv is data, so `--dry-run` shows exactly what runs.
"""

from __future__ import annotations

import subprocess

from pangeohub.config import Config
from pangeohub.errors import PangeoError
from pangeohub.targets.kubernetes.mapping import IMAGE_PREFIX

HUB = "deploy/hub"  # the jupyterhub chart's hub Deployment; its container is also named hub
CONTAINER = "hub"
PANGEOHUB = f"{IMAGE_PREFIX}/bin/pangeohub"  # the image's own, whatever PATH an exec session gets


def exec_argv(config: Config, kubectl: str, args: list[str], tty: bool) -> list[str]:
    if not args:
        raise PangeoError("nothing to run in the hub pod: no command was given",
                          "name a pangeohub command after --, e.g. pangeohub exec kubernetes -- users list")
    if args[0] in ("--config", "-c") or args[0].startswith("--config="):
        raise PangeoError(f"{' '.join(args[:2])}: a config file of this machine does not exist in the hub pod",
                          "leave it out: the hub pod reads the config rendered for it (/etc/pangeohub/config.yaml)")
    terminal = ["--stdin", "--tty"] if tty else ["--stdin"]
    return [kubectl, "--namespace", config.kubernetes.namespace, "exec", *terminal, HUB, "--container",
            CONTAINER, "--", PANGEOHUB, *args]


def run(argv: list[str]) -> int:
    """The remote command's exit status (kubectl exec passes it on); its output goes straight to ours."""
    return subprocess.run(argv).returncode
