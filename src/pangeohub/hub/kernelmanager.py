"""The single-user server's kernel manager: a kernel that cannot encrypt its connections is refused with
the reason and the fix, and a connection file the kernel is rewriting is read once it is written.

Fixes upstream's answer. The platform requires CurveZMQ on every kernel connection (``render.hub``: anyone on
the machine could otherwise read a kernel's output on loopback). jupyter_client then refuses a kernel spec
that does not declare ``"supported_encryption": ["curve"]`` with a bare RuntimeError, which the server turns
into HTTP 500 "Unhandled error": all a person sees in JupyterLab for a kernel they installed themselves.

Fixes a race with ipykernel. With CurveZMQ keys in the connection file, ipykernel always writes the file again
as it starts (it compares its keys, bytes, with the file's, text, and finds them different), by truncating it
and then writing. The server reads the same file right after launching the kernel (jupyter_client's
``_reconcile_connection_info``); a forked kernel starts within milliseconds, so under load the server could
read the file empty, and the person's kernel start failed with "Unhandled error" (JSONDecodeError). A file
that does not parse is read again until it does (the content is the same either way).
"""

from __future__ import annotations

import json
import time

from jupyter_server.services.kernels.kernelmanager import ServerKernelManager
from tornado import web


# How long a kernel may take to finish writing its connection file: a starved process can be descheduled
# between the truncation and the write.
REWRITE_PATIENCE = 5.0


class PangeoKernelManager(ServerKernelManager):
    def _reconcile_connection_info(self, info):
        deadline = time.monotonic() + REWRITE_PATIENCE
        while True:
            try:
                return super()._reconcile_connection_info(info)
            except json.JSONDecodeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)  # the kernel is between truncating the file and writing it

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
