"""The single-user server's kernel manager: a kernel that cannot encrypt its connections is refused with
the reason and the fix.

Fixes upstream's answer. The platform requires CurveZMQ on every kernel connection (``render.hub``: anyone on
the machine could otherwise read a kernel's output on loopback). jupyter_client then refuses a kernel spec
that does not declare ``"supported_encryption": ["curve"]`` with a bare RuntimeError, which the server turns
into HTTP 500 "Unhandled error": all a person sees in JupyterLab for a kernel they installed themselves.
"""

from __future__ import annotations

from jupyter_server.services.kernels.kernelmanager import ServerKernelManager
from tornado import web


class PangeoKernelManager(ServerKernelManager):
    async def _async_pre_start_kernel(self, **kw):
        policy = self._transport_encryption_policy(kw.get("transport_encryption"))
        if policy == "required" and not self._kernel_supports_curve_encryption():
            spec = self.kernel_spec
            where = getattr(spec, "resource_dir", "") or "its kernel spec directory"
            raise web.HTTPError(400, log_message=(
                f"The kernel '{self.kernel_name}' cannot start here: this platform encrypts every kernel "
                "connection (CurveZMQ) and its kernel spec does not say the kernel can. If the kernel supports "
                "it (ipykernel 7 or later does), add \"supported_encryption\": [\"curve\"] to the \"metadata\" "
                f"of {where}/kernel.json; otherwise ask an administrator.").replace("%", "%%"))
        return await super()._async_pre_start_kernel(**kw)
