"""Run the jupyterhub chart's own hub config (jupyterhub_config.py + z2jh.py) as the hub pod would, in this
runtime (the JupyterHub of requirements/runtime.lock, KubeSpawner of kubernetes-hub.lock), and report as JSON:
the warnings traitlets printed (unknown options), the sections the hub loaded, and for each profile the pod
KubeSpawner builds from the config (KubeSpawner's own ``_mock`` mode: no API server).

Usage: python k8s_load_hub.py <etc dir holding jupyterhub_config.py, z2jh.py, config/, secret/> <profiles JSON>
"""

import asyncio
import json
import logging
import sys
from types import SimpleNamespace


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def main(etc: str, users_json: str) -> None:
    from jupyterhub.app import JupyterHub
    from traitlets import import_item

    app = JupyterHub.instance()
    capture = Capture()
    app.log.addHandler(capture)
    logging.getLogger().addHandler(capture)
    app.load_config_file(f"{etc}/jupyterhub_config.py")
    config = app.config
    app.update_config(config)  # JupyterHub's own traits: a wrong type raises here

    spawner_cls = import_item(config.JupyterHub.spawner_class)
    auth_cls = import_item(config.JupyterHub.authenticator_class)
    known = {cls.__name__ for owner in (spawner_cls, auth_cls) for cls in owner.mro()}
    known |= {"JupyterHub", "ConfigurableHTTPProxy", "CryptKeeper", "Proxy"}
    unknown_sections = sorted(set(config) - known)
    auth_cls(config=config, parent=app)  # the login mode's settings: a wrong type raises here

    pods = asyncio.run(build_pods(spawner_cls, config, app, json.loads(users_json)))
    print(json.dumps({"warnings": capture.lines, "unknown_sections": unknown_sections, "pods": pods,
                      "services": [s["name"] for s in config.JupyterHub.services],
                      "roles": [r["name"] for r in config.JupyterHub.load_roles]}))


async def build_pods(spawner_cls, config, app, cases) -> dict:
    from kubernetes_asyncio.client import ApiClient

    pods = {}
    for case in cases:
        user = SimpleNamespace(name=case["user"], id=case.get("hub_id", 1), url=f"/user/{case['user']}/",
                               admin=case.get("admin", False),
                               groups=[SimpleNamespace(name=g) for g in case.get("groups", [])])
        spawner = spawner_cls(_mock=True, config=config, user=user, parent=app)
        spawner.user_options = {"profile": case["profile"]} if case.get("profile") else {}
        try:
            await spawner.load_user_options()
            pod = await spawner.get_pod_manifest()
            pods[case["id"]] = {"pod": ApiClient().sanitize_for_serialization(pod),
                                "pvc": ApiClient().sanitize_for_serialization(spawner.get_pvc_manifest())}
        except Exception as exc:  # the refusal a person would see
            pods[case["id"]] = {"error": f"{type(exc).__name__}: {exc}"}
    return pods


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
