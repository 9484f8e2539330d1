"""``pangeohub clusters list [--json]`` and ``pangeohub clusters stop NAME | --user USER``."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import typer

from pangeohub.cli.context import state
from pangeohub.errors import PangeoError
from pangeohub.gateway import ADMIN_PATH
from pangeohub.units import format_size

app = typer.Typer(help="See and stop users' Dask clusters.", no_args_is_help=True)


def _endpoint() -> tuple[str, str, str]:
    """(URL of the operator API, token, what to do when it does not answer).

    On the hub's machine: the gateway's private port, with the secret only root can read. With --hub-url:
    through the hub's proxy (/services/dask-gateway/ as every target routes it), with an admin's hub token,
    which the operator API checks with the hub (gateway/admin.py)."""
    remote = state.remote()
    if remote:
        return (f"{remote.gateway}{ADMIN_PATH}", remote.token,
                "is Dask Gateway enabled on that hub (gateway.enabled)? see `pangeohub --hub-url ... check`")
    rt = state.runtime()
    if not rt.config.gateway.enabled:
        raise PangeoError("Dask Gateway is disabled (gateway.enabled: false)", "enable it in the config and restart")
    return (f"http://127.0.0.1:{rt.config.gateway.api_port}{ADMIN_PATH}", rt.secret("gateway_admin_token"),
            "is the platform running? see `pangeohub status`")


def _request(method: str, query: dict | None = None):
    url, token, fix = _endpoint()
    if query:
        url += "?" + urllib.parse.urlencode(query)
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        if exc.code == 404 and state.remote():
            raise PangeoError(f"no Dask Gateway operator API at {url.split('?')[0]} (404)", fix) from None
        if exc.code in (401, 403) and state.remote():
            raise PangeoError(f"the gateway at {state.remote().gateway} refused this token: {exc.code} {exc.reason}",
                              "give the token of a hub admin (one whose token holds admin:servers)") from None
        raise PangeoError(f"the gateway refused {method} {ADMIN_PATH}: {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise PangeoError(f"cannot reach Dask Gateway at {url} ({getattr(exc, 'reason', exc)})", fix) from None
    except ValueError:
        raise PangeoError(f"{url} did not answer as the gateway's operator API (no JSON)", fix) from None


def _age(seconds: float) -> str:
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@app.command("list")
def list_clusters(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Every running cluster: owner, name, workers, cores, memory, age."""
    rows = _request("GET")
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no clusters")
        return
    typer.echo(f"{'USER':<16} {'NAME':<34} {'STATUS':<9} {'WORKERS':>7} {'CORES':>6} {'MEMORY':>7} {'AGE':>6}")
    for r in rows:
        typer.echo(f"{r['user']:<16} {r['name']:<34} {r['status']:<9} {r['workers']:>7} {r['cores']:>6g} "
                   f"{format_size(r['memory']):>7} {_age(r['age']):>6}")


@app.command()
def stop(
    name: str = typer.Argument(None, help="Cluster name (see `pangeohub clusters list`)."),
    user: str = typer.Option(None, "--user", help="Stop every cluster of this hub user instead."),
) -> None:
    """Stop one cluster, or all clusters of a user."""
    if bool(name) == bool(user):
        raise PangeoError("give a cluster NAME or --user USER (exactly one)",
                          "e.g. `pangeohub clusters stop --user alice`")
    stopped = _request("DELETE", {"name": name} if name else {"user": user})
    if not stopped:
        what = f"cluster {name!r}" if name else f"clusters of user {user!r}"
        raise PangeoError(f"no running {what}", "see `pangeohub clusters list`")
    for cluster in stopped:
        typer.echo(f"stopping {cluster}")
