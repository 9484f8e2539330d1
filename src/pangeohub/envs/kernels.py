"""Each named environment as a Jupyter kernel, and the spawn hook that shows a person the ones they may use.

Every environment keeps its kernelspec in its own Jupyter data dir, ``envs/NAME/jupyter/kernels/NAME``; the hook
puts the data dirs of the environments a person may use on their server's ``JUPYTER_PATH``. So the choice is made
once per spawn from the config, with no file per person, and an environment built later shows up at the next
start. The kernel runs ``envs/NAME/current/bin/python``: a rollback changes what new kernels run.
"""

from __future__ import annotations

import json
import os

from pangeohub.envs.dask import CLIENT_VARIABLE
from pangeohub.envs.layout import EnvDir, write_json

# The kernel tells code running in it (the Dask Gateway client, `pangeohub-env`) which environment it is.
ENV_VARIABLE = "PANGEOHUB_ENVIRONMENT"


def kernelspec(envdir: EnvDir) -> dict:
    return {
        "argv": [str(envdir.current_link / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python ({envdir.name})",
        "language": "python",
        "env": {ENV_VARIABLE: envdir.name, CLIENT_VARIABLE: envdir.name},
        # Every kernel connection is encrypted here (CurveZMQ); ipykernel 7 can, and every build has it.
        "metadata": {"pangeohub": {"environment": envdir.name}, "supported_encryption": ["curve"]},
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


def kernel_path(config, groups: set[str], admin: bool, inherited: str | None = None) -> dict[str, str]:
    """``JUPYTER_PATH`` that lists the kernels of the environments this person may use (before ``inherited``);
    {} when there are none. Also what the Kubernetes spawner gives a server (the environments are in the image)."""
    dirs = [str(envdir.kernels_parent) for envdir in usable(config, groups, admin)]
    return {"JUPYTER_PATH": os.pathsep.join(dirs + ([inherited] if inherited else []))} if dirs else {}


async def environments_hook(spawner, account) -> dict[str, str]:
    """Spawn hook: the person's server lists a kernel for each environment they may use, and runs in the
    environment its profile names."""
    config = spawner.runtime.config
    groups = {group.name for group in getattr(spawner.user, "groups", [])}
    env = kernel_path(config, groups, bool(spawner.user.admin), os.environ.get("JUPYTER_PATH"))
    env.update(_server_environment(spawner, config))
    runtime_data = env.pop("JUPYTER_PATH_RUNTIME", None)
    if runtime_data:
        env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [env.get("JUPYTER_PATH"), runtime_data]))
    return env


def _server_environment(spawner, config) -> dict[str, str]:
    """Run the server with the profile's environment's Python (a fresh process: a fork of the fork server would
    be the runtime's). The spawner object lives on between spawns, so the default command is kept to go back to."""
    if not hasattr(spawner, "_runtime_cmd"):
        spawner._runtime_cmd = list(spawner.cmd)
    spawner.cmd = list(spawner._runtime_cmd)
    name = getattr(getattr(spawner, "profile", None), "environment", None)
    if not name:
        return {}
    envdir = EnvDir.of(config.install_dir, name)
    if envdir.current() is None:
        spawner.log.warning("Environment %s of profile %s is not built yet: %s's server runs the default stack",
                            name, spawner.profile.name, spawner.user.name)
        return {}
    spawner.cmd = [str(envdir.current_link / "bin" / "python"), "-m", "jupyterhub.singleuser"]
    # Jupyter looks for its config (server extensions: ours, Dask's, the proxy) and JupyterLab's assets under
    # sys.prefix, which is now the environment's: point it at the runtime's, where the installer put them.
    runtime = config.install_dir
    return {ENV_VARIABLE: name, CLIENT_VARIABLE: name, "JUPYTER_CONFIG_PATH": str(runtime / "etc" / "jupyter"),
            "JUPYTER_PATH_RUNTIME": str(runtime / "share" / "jupyter")}


def read_kernelspec(envdir: EnvDir) -> dict:
    return json.loads((envdir.kernels_parent / "kernels" / envdir.name / "kernel.json").read_text())
