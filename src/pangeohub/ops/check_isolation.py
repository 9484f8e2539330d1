"""``pangeohub check``'s isolation phase: a second synthetic person, and the first tries to reach their things.

Operators change machines (a new filesystem for homes, another cgroup layout, an upgraded object store); this
phase shows on the live platform that the basics still hold: the first person's kernel cannot read the
second's home or temp files, their scratch objects (with the first person's own credentials), or connect to
their Dask cluster. Each item is reported; any one that leaks fails the check.
"""

from __future__ import annotations

import json
import secrets

from pangeohub.ops.people import give_back, take_people
from pangeohub.usersim import SimError

# Run in the neighbour's kernel: leave something of each kind and say where it is.
PLANT = """
import json, os, pathlib, tempfile
secret = {token!r}
home = pathlib.Path.home() / '.pangeohub-check-secret'
home.write_text(secret)
temp = tempfile.NamedTemporaryFile('w', delete=False, prefix='pangeohub-check-')
temp.write(secret); temp.close()
found = {{'home': str(home), 'temp': temp.name}}
if os.environ.get('PANGEO_SCRATCH'):
    import fsspec
    found['scratch'] = os.environ['PANGEO_SCRATCH'] + '.pangeohub-check-secret'
    with fsspec.open(found['scratch'], 'w') as f:
        f.write(secret)
if {gateway!r}:
    from dask_gateway import Gateway
    _check_cluster = Gateway().new_cluster()
    found['cluster'] = _check_cluster.name
print(json.dumps(found))
"""

# Run in the first person's kernel: try each; 'refused' is the only good answer.
PROBE = """
import json
found = json.loads({found!r})
result = {{}}
def attempt(key, read):
    try:
        value = read()
    except Exception as exc:
        refused = isinstance(exc, PermissionError) or (key == 'cluster' and 'not found' in str(exc))
        result[key] = 'refused' if refused else f'could not tell: {{type(exc).__name__}}: {{exc}}'
    else:
        result[key] = 'LEAK: ' + repr(value)[:60]
attempt('home', lambda: open(found['home']).read())
attempt('temp', lambda: open(found['temp']).read())
if 'scratch' in found:
    import fsspec
    attempt('scratch', lambda: fsspec.open(found['scratch']).open().read())
if 'cluster' in found:
    from dask_gateway import Gateway
    attempt('cluster', lambda: Gateway().connect(found['cluster']).name)
print(json.dumps(result))
"""


# Run in the neighbour's kernel after the probe: remove what PLANT left (the cluster ends with the kernel).
CLEAN = """
import json, os
found = json.loads({found!r})
for key in ('home', 'temp'):
    try:
        os.unlink(found[key])
    except OSError:
        pass
if 'scratch' in found:
    import fsspec
    fs = fsspec.core.url_to_fs(found['scratch'])[0]
    if fs.exists(found['scratch']):
        fs.rm(found['scratch'])
"""


async def isolation_phase(ctx) -> str:
    rt = ctx.rt
    # The second person: a temporary one, or the second of the site's test accounts.
    people = take_people(rt, [f"check-{secrets.token_hex(3)}"], "pangeohub check", start=1)
    neighbour_person = people[0]
    try:
        async with neighbour_person.sim(rt.local_url, timeout=900) as neighbour:
            if neighbour_person.temporary:
                await neighbour.login()
            await neighbour.start_server()
            kernel = await neighbour.start_kernel()
            plant = PLANT.format(token=secrets.token_hex(8), gateway=bool(rt.config.gateway.enabled))
            planted = await neighbour.execute(kernel, plant)
            if not planted.ok:
                raise SimError(f"the second person could not set up: {planted.error}\n{planted.stderr[-500:]}")
            found = planted.stdout.strip().splitlines()[-1]
            probed = await ctx.sim.execute(ctx.kernel, PROBE.format(found=found))
            # What was planted goes now: a site's test account keeps its home after the check.
            await neighbour.execute(kernel, CLEAN.format(found=found))
            if not probed.ok:
                raise SimError(f"the probe failed: {probed.error}\n{probed.stderr[-500:]}")
            result = json.loads(probed.stdout.strip().splitlines()[-1])
            await neighbour.stop_kernel(kernel)
    finally:
        problems = give_back(rt, people)
        if problems:
            raise SimError("could not give back the second check person: " + "; ".join(problems))
    bad = {key: value for key, value in result.items() if value != "refused"}
    if bad:
        raise SimError("another person's things are reachable: "
                       + ", ".join(f"{key}: {value}" for key, value in bad.items()))
    return f"{neighbour_person.name}'s " + ", ".join(result) + ": each refused"
