#!/usr/bin/env bash
# Install everything the tests need (idempotent), then run the whole suite against the real platform.
set -uo pipefail
cd "$(dirname "$0")"
PREFIX="${PANGEOHUB_PREFIX:-/opt/pangeohub}"
python3 install.py --no-start --dev --prefix "$PREFIX" || exit 1
# The test tools live apart from the runtime (install.py --dev): only this command puts them on the path.
PYTHONPATH="$PREFIX/test-tools${PYTHONPATH:+:$PYTHONPATH}" "$PREFIX/bin/python" -m pytest "$@"
code=$?
# pytest exits 5 when it collected no test: that is a broken suite, not a pass.
if [ "$code" -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi
exit "$code"
