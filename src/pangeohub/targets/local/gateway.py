"""PangeoBackend: dask-gateway-server's LocalBackend, running each cluster as its owner's Linux account.

The local target's backend: the platform's gateway rules (``pangeohub.gateway.backend.PangeoBackendMixin``)
over upstream's ``LocalBackend``. What it fixes or adds to upstream ``LocalBackend``:
- ``setup_working_directory`` does ``paths.extend(path)`` on a string, so as root it calls ``os.chown('/')``
  (and on every other character of the path). Here exactly the cluster's own files change owner.
- Processes run as ``<users.system_prefix><name>`` (the account the hub spawns servers as), not as an account
  named like the hub user, and only if pangeohub made that account; in the owner's cgroup.
- Each cluster gets a private working directory, its own DASK_TEMPORARY_DIRECTORY, the user's home, their
  ``pip install --user`` packages and the storage variables of their notebook server.
- Schedulers and nannies are forked from the fork server's Dask template (``daskfork``) where that gives the
  same process (``gateway.fast_start``), and nannies fork their workers: a fresh process each otherwise. A named
  environment that extends the default stack is such a case: the template's process with the environment's
  own packages added is what its Python would start.
"""

from __future__ import annotations

import os
import pwd
import resource

from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.local import LocalBackend

from pangeohub.envs.layout import stack_layer
from pangeohub.gateway.backend import PangeoBackendMixin
from pangeohub.gateway.userenv import forwarded_env, person_env, usersite_pythonpath
from pangeohub.names import is_ours, system_name
from pangeohub.targets.local.cgroups import enter_user_cgroup
from pangeohub.targets.local.daskfork import PROGRAMS
from pangeohub.targets.local.forkclient import (
    IMPORT_TIME_ENV,
    RLIMITS,
    ForkUnavailable,
    ask,
    dask_socket,
    forkserver_socket,
)


class PangeoBackend(PangeoBackendMixin, LocalBackend):
    # -- whose account ---------------------------------------------------------------------------------
    def account(self, username: str) -> pwd.struct_passwd:
        """The Linux account a hub user's clusters run as; only accounts pangeohub created qualify."""
        if ":" in username:  # dask-gateway names hub services "service:<name>": they have no account
            raise PublicException(f"{username} is not a hub user: only users can start Dask clusters")
        name = system_name(username, self.pconfig.users.system_prefix)
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise PublicException(
                f"user {username} has no Linux account yet: start your notebook server once, then retry") from None
        if not is_ours(entry):
            raise PublicException(f"refusing to run as {name}: it is not an account pangeohub created")
        return entry

    # -- running as the user ---------------------------------------------------------------------------
    def cgroup_for(self, cluster):
        """The user's cgroup (the one their notebook server is in, with its profile's limits), or None when
        limits are off. Every scheduler and worker joins it from the child before exec, so there is no window
        in which a Dask process runs unlimited, and the profile's memory covers notebook and Dask together."""
        from pangeohub.targets.local.cgroups import user_cgroup

        return user_cgroup(self.pconfig, self.account(cluster.username).pw_name)

    def set_file_permissions(self, paths, username):
        entry = self.account(username)
        for path in paths:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def make_preexec_fn(self, cluster):  # pragma: no cover - runs in the child
        entry = self.account(cluster.username)
        groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
        workdir = cluster.state["workdir"]
        cgroup = self.cgroup_for(cluster)
        umask = int(self.pconfig.users.umask, 8)

        def preexec():
            enter_user_cgroup(cgroup)  # while still root: after the uid change cgroup.procs is not writable
            os.setgid(entry.pw_gid)
            os.setgroups(groups)
            os.setuid(entry.pw_uid)
            os.umask(umask)
            os.chdir(workdir)

        return preexec

    # -- starting processes: forked from the Dask template where that gives the same process -----------
    async def start_process(self, cluster, cmd, env, name):
        try:
            request = self.fork_request(cluster, cmd, env)
        except ForkUnavailable as why:
            self.log.debug("Starting %s of cluster %s as a fresh process: %s", name, cluster.name, why)
            return await super().start_process(cluster, cmd, env, name)
        log_path = os.path.join(self.get_logs_directory(cluster.state["workdir"]), name + ".log")
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            return await ask(self.dask_socket, request, fds=(fd, fd))
        except ForkUnavailable as why:  # the fork server went away since the check: start it the stock way
            self.log.info("Starting %s of cluster %s as a fresh process: %s", name, cluster.name, why)
            os.unlink(log_path)
            return await super().start_process(cluster, cmd, env, name)
        finally:
            os.close(fd)

    @property
    def dask_socket(self):
        return dask_socket(forkserver_socket(self.pconfig.state_dir))

    def fork_request(self, cluster, cmd, env) -> dict:
        """The start as data for the Dask template; raises ForkUnavailable where only a fresh process can
        give the same scheduler or worker."""
        if not self.pconfig.gateway.fast_start:
            raise ForkUnavailable("gateway.fast_start is off")
        argv, layer = self.template_command(cmd)
        import_time = sorted(k for k in set(env) & set(IMPORT_TIME_ENV)
                             if not (k == "PYTHONPATH" and env[k] == usersite_pythonpath()))
        if import_time:
            raise ForkUnavailable(f"environment sets {', '.join(import_time)}")
        if not self.dask_socket.exists():
            raise ForkUnavailable(f"no Dask template at {self.dask_socket}")
        cgroup = self.cgroup_for(cluster)
        return {
            "user": self.account(cluster.username).pw_name,
            "argv": argv,
            "layer": layer,
            # A forked nanny forks its worker too: the worker then starts with everything imported.
            "env": {**env, "DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD": "fork"},
            "cwd": cluster.state["workdir"],
            "umask": int(self.pconfig.users.umask, 8),
            "rlimits": {rl: resource.getrlimit(getattr(resource, rl)) for rl in RLIMITS},
            "cgroup": {"procs_files": list(cgroup.procs_files) if cgroup else []},
        }

    def template_command(self, cmd) -> tuple[list[str], dict | None]:
        """``cmd`` as the Dask template runs it, and the named environment layered over the stack it runs in (its
        site-packages, prefix and Python, for ``daskfork``), or None for the default stack. Raises
        ForkUnavailable for a command only a fresh process runs the same: another Python, or an environment that
        does not extend the stack (``base: none``, where dask itself may be another version)."""
        dask = str(self.pconfig.install_dir / "bin" / "dask")
        if len(cmd) >= 2 and cmd[0] == dask and cmd[1] in PROGRAMS:
            return list(cmd), None
        if len(cmd) >= 4 and cmd[1:3] == ["-m", "dask"] and cmd[3] in PROGRAMS:
            site = stack_layer(self.pconfig.install_dir, cmd[0])
            if site is not None:
                prefix = site.parent.parent.parent
                return [dask, *cmd[3:]], {"site_packages": str(site), "prefix": str(prefix), "python": cmd[0]}
        raise ForkUnavailable(f"not the platform's own Dask nor an environment over it: {cmd[:4]}")

    def setup_working_directory(self, cluster):
        """Upstream's, minus its ``paths.extend(path)`` (which chowns '/'): a private directory per cluster."""
        if not self.clusters_directory:
            raise PublicException("the gateway has no clusters_directory configured")
        workdir = os.path.join(self.clusters_directory, cluster.name)
        certsdir = self.get_certs_directory(workdir)
        logsdir = self.get_logs_directory(workdir)
        tmpdir = self.get_temporary_directory(workdir)
        os.mkdir(workdir, 0o700)  # fails if it exists: never adopt a directory somebody else prepared
        for path in (certsdir, logsdir, tmpdir):
            os.mkdir(path, 0o700)
        cert_path, key_path = self._get_tls_paths(workdir)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        for path, data in ((cert_path, cluster.tls_cert), (key_path, cluster.tls_key)):
            with os.fdopen(os.open(path, flags, 0o600), "wb") as handle:
                handle.write(data)
        # Children before the directory: until the end, root owns everything and the user cannot interfere.
        self.set_file_permissions([cert_path, key_path, certsdir, logsdir, tmpdir, workdir], cluster.username)
        self.log.debug("Working directory %s for cluster %s created", workdir, cluster.name)
        return workdir

    def get_temporary_directory(self, workdir: str) -> str:
        return os.path.join(workdir, "tmp")

    def get_env(self, cluster):
        entry = self.account(cluster.username)
        workdir = cluster.state["workdir"]
        env = forwarded_env(self.pconfig.state_dir, cluster.username, self.gw.forward_env)
        env.update(super().get_env(cluster))  # the gateway's own variables win over forwarded ones
        env.update(person_env(entry, self.pconfig.install_dir, env.get("LANG", "C.UTF-8")))
        env.update({
            "DASK_TEMPORARY_DIRECTORY": self.get_temporary_directory(workdir),
            # Private like the rest of the cluster's working directory, not the machine's shared /tmp.
            "TMPDIR": self.get_temporary_directory(workdir),
        })
        return env
