"""Each named environment as a Jupyter kernel, and the spawn hook that shows a person the ones they may use.

Every environment keeps its kernelspec in its own Jupyter data dir, ``envs/NAME/jupyter/kernels/NAME``; the hook
puts the data dirs of the environments a person may use on their server's ``JUPYTER_PATH``. So the choice is made
once per spawn from the config, with no file per person, and an environment built later shows up at the next
start. The kernel runs ``envs/NAME/current/bin/python``: a rollback changes what new kernels run.
"""

from __future__ import annotations

import json
import os

from pangeohub.envs.layout import EnvDir, write_json

# The kernel tells code running in it (the Dask Gateway client, `pangeohub-env`) which environment it is.
ENV_VARIABLE = "PANGEOHUB_ENVIRONMENT"


def kernelspec(envdir: EnvDir) -> dict:
    return {
        "argv": [str(envdir.current_link / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python ({envdir.name})",
        "language": "python",
        "env": {ENV_VARIABLE: envdir.name},
        "metadata": {"pangeohub": {"environment": envdir.name}},
    }


def write_kernelspec(envdir: EnvDir) -> None:
    folder = envdir.kernels_parent / "kernels" / envdir.name
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "kernel.json", kernelspec(envdir))
    for path in (envdir.path, envdir.kernels_parent, folder.parent, folder, folder / "kernel.json"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)  # read by every person's server


def usable(config, groups: set[str], admin: bool) -> list[EnvDir]:
    """Environments this person may use that have a version built, in config order."""
    found = []
    for spec in config.environments:
        envdir = EnvDir.of(config.install_dir, spec.name)
        if spec.allows(groups, admin) and envdir.current() is not None:
            found.append(envdir)
    return found


async def environments_hook(spawner, account) -> dict[str, str]:
    """Spawn hook: the person's server lists a kernel for each environment they may use."""
    config = spawner.runtime.config
    groups = {group.name for group in getattr(spawner.user, "groups", [])}
    dirs = [str(envdir.kernels_parent) for envdir in usable(config, groups, bool(spawner.user.admin))]
    if not dirs:
        return {}
    inherited = os.environ.get("JUPYTER_PATH")
    return {"JUPYTER_PATH": os.pathsep.join(dirs + ([inherited] if inherited else []))}


def read_kernelspec(envdir: EnvDir) -> dict:
    return json.loads((envdir.kernels_parent / "kernels" / envdir.name / "kernel.json").read_text())
