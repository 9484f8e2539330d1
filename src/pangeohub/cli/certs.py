"""``pangeohub certs status | renew [--force] | serve``: the hub's HTTPS certificate."""

from __future__ import annotations

import json
import threading
import time

import typer

from pangeohub.cli.context import state
from pangeohub.errors import PangeoError

app = typer.Typer(help="The hub's HTTPS certificate: status, renewal.", no_args_is_help=True)


def _require_https(rt) -> None:
    if rt.config.hub.tls_mode == "off":
        raise PangeoError("HTTPS is off (no hub.domain, or hub.https.mode: off)",
                          "set hub.domain (see the admin guide: 'Give your hub a name and HTTPS')")


@app.command("status")
def status_cmd(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Certificate names, issuer, expiry, next renewal and the last error."""
    from pangeohub.tls.status import certificate_status, format_status

    rt = state.runtime()
    _require_https(rt)
    report = certificate_status(rt)
    typer.echo(json.dumps(report, indent=2) if as_json else "\n".join(format_status(report)))


@app.command()
def renew(force: bool = typer.Option(False, "--force", help="Ask the CA now, even if the certificate is not "
                                     "due or a back-off is running.")) -> None:
    """Renew the certificate if due (ACME), or reload the certificate files (mode 'files'). No restart: open
    connections stay; new ones get the new certificate."""
    from pangeohub.services.supervisor import supervisor_pid
    from pangeohub.tls import renew as tls_renew
    from pangeohub.tls.store import read_installed, tls_paths

    rt = state.runtime()
    _require_https(rt)
    if rt.config.hub.tls_mode == "files":
        info = tls_renew.install_files(rt)
    elif force:
        info = tls_renew.obtain(rt, force=True, listener_running=supervisor_pid(rt) is not None)
    else:
        info = tls_renew.renew_if_due(rt)
        if info is None:
            current = read_installed(tls_paths(rt))
            until = time.strftime("%Y-%m-%d", time.gmtime(current.not_after)) if current else "-"
            typer.echo(f"not due: the certificate is valid until {until} (use --force to renew now)")
            return
    typer.echo(f"certificate for {', '.join(info.names)} (serial {info.serial}) valid until "
               f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(info.not_after))}; the proxy serves it to new "
               "connections")


@app.command(hidden=True)
def serve() -> None:
    """The tls service: plain-HTTP listener (challenges, redirect) and the renewal timer."""
    from pangeohub.tls import renew as tls_renew
    from pangeohub.tls.web import listener_for

    rt = state.runtime()
    server = listener_for(rt)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening on {rt.config.hub.ip}:{rt.config.hub.https.http_port} (ACME challenges, redirect to HTTPS)",
          flush=True)
    while rt.config.hub.tls_mode == "acme":
        try:
            info = tls_renew.renew_if_due(rt)
            if info is not None:
                print(f"renewed: serial {info.serial}, valid until {time.ctime(info.not_after)}", flush=True)
        except PangeoError as exc:  # recorded with its back-off; status shows it
            print(f"renewal failed: {exc.what}", flush=True)
        time.sleep(rt.config.hub.https.acme.check_every)
    threading.Event().wait()
