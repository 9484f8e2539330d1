"""The fork server's one listing of the installed distributions (pangeohub.targets.local.installed) must answer
every entry-point query a server makes exactly as the disk would: a server that missed a kernel provisioner or
a language-server spec would start kernels wrongly or lose a feature, silently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

# Run in a fresh interpreter started like the fork server (-I): the queries before and after the listing.
PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import importlib.metadata as std
import importlib_metadata as backport
GROUPS = ["jupyter_client.kernel_provisioners", "jupyter_serverproxy_servers", "jupyter_lsp_spec_v1",
          "jupyter_lsp_listener_v1", "jupyterlab.languagepack", "console_scripts", "xarray.backends", "no.such.group"]
def answers():
    found = {}
    for label, module in (("std", std), ("backport", backport)):
        for group in GROUPS:
            found[f"{label} {group}"] = sorted([e.name, e.value, e.dist.name if e.dist else None]
                                               for e in module.entry_points(group=group))
        found[f"{label} provisioner by name"] = [e.value for e in module.entry_points(
            group="jupyter_client.kernel_provisioners", name="local-provisioner")]
    found["std all groups"] = sorted(std.entry_points().groups)
    return found
before = answers()
from pangeohub.targets.local.installed import remember_distributions
remember_distributions()
after = answers()
print(json.dumps({"same": before == after, "after": after,
                  "version": backport.version("jupyter_server") == std.version("jupyter_server"),
                  "by_name": backport.distribution("jupyter-server").metadata["Name"]}))
"""


def test_remembered_distributions_answer_every_query_as_the_disk_does():
    out = subprocess.run([sys.executable, "-I", "-c", PROBE, str(SRC)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["same"], "a query answered differently from the listing than from the disk"
    after = result["after"]
    # Not vacuous: the groups a server depends on are found, through both modules.
    for label in ("std", "backport"):
        assert len(after[f"{label} jupyter_client.kernel_provisioners"]) >= 1
        assert after[f"{label} provisioner by name"]
        assert after[f"{label} console_scripts"]
        assert after[f"{label} no.such.group"] == []
    assert result["version"] and result["by_name"].replace("_", "-").lower() == "jupyter-server"
