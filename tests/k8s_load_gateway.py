"""Run the dask-gateway chart's gateway config (its ConfigMap's dask_gateway_config.py, our extraConfig included)
with the dask-gateway-server of requirements/runtime.lock and its Kubernetes backend, and report as JSON: the
warnings traitlets printed, the backend class, and the cluster config a user gets for some options.

Usage: python k8s_load_gateway.py <dask_gateway_config.py> <cases JSON: [{"id", "groups", "options"}]>
"""

import asyncio
import json
import logging
import os
import sys
from types import SimpleNamespace


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


async def clusters(backend, cases) -> dict:
    out = {}
    for case in cases:
        user = SimpleNamespace(name="alice", groups=set(case.get("groups", [])))
        try:
            options, config = await backend.process_cluster_options(user, case.get("options", {}))
            out[case["id"]] = {"options": options, "config": {k: v for k, v in config.to_dict().items()
                                                              if isinstance(v, (int, float, str, type(None)))}}
        except Exception as exc:
            out[case["id"]] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def main(path: str, cases_json: str) -> None:
    from dask_gateway_server.app import DaskGateway
    from traitlets import import_item

    app = DaskGateway.instance()
    capture = Capture()
    app.log.addHandler(capture)
    logging.getLogger().addHandler(capture)
    app.load_config_file(os.path.basename(path), path=os.path.dirname(path))
    backend_cls = import_item(app.config.DaskGateway.backend_class)
    backend = backend_cls(config=app.config, parent=app, log=app.log)
    result = {
        "warnings": capture.lines,
        "backend_class": f"{backend_cls.__module__}.{backend_cls.__name__}",
        "limits": backend.gw.limits.model_dump(mode="json"),
        "clusters": asyncio.run(clusters(backend, json.loads(cases_json))),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
