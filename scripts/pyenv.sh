#!/usr/bin/env bash
# Creates once, and prints the path of, the Python virtualenv for a requirements file:
#   scripts/pyenv.sh [test/requirements.txt]   ->  $KINFER_CACHE/py-<name>-<hash of the file>
# The venv sees Debian's python3-torch/torchvision (--system-site-packages), which are a far
# lighter source of torch than the PyPI wheel. Only the path goes to stdout; pip talks on stderr.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
req=${1:-test/requirements.txt}
[ -f "$root/$req" ] || { echo "pyenv.sh: no such requirements file: $req" >&2; exit 2; }
cache=${KINFER_CACHE:-$HOME/.cache/kinfer}
hash=$(sha256sum "$root/$req" | cut -c1-12)
venv=$cache/py-$(basename "$req" .txt)-$hash
mkdir -p "$cache"
# Several builds may ask for the same venv at once: one builds it, the others wait for it.
exec 9>"$venv.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/$req" >&2 \
    || { echo "pyenv.sh: pip install -r $req failed (see above)" >&2; rm -rf "$venv"; exit 1; }
  touch "$venv/.complete"
fi
echo "$venv"
