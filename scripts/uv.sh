#!/usr/bin/env bash
# Runs the uv that scripts/uv-requirements.txt pins (version and hashes), installing it
# first, in a virtual environment of its own under the user cache (one per version).
# uv uses the machine's python3 (or DAMSO_PYTHON), never a Python it would download.
#   scripts/uv.sh ARGS...     e.g. scripts/uv.sh lock --upgrade
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

python=$("${DAMSO_PYTHON:-python3}" -c 'import sys; assert sys.version_info >= (3, 11), sys.version; print(sys.executable)') \
  || { echo "uv.sh: damso needs Python 3.11 or newer as python3 (or DAMSO_PYTHON)" >&2; exit 1; }

version=$(sed -n 's/^uv==\([0-9.]*\).*/\1/p' "$here/uv-requirements.txt")
home="${XDG_CACHE_HOME:-$HOME/.cache}/damso-tools/uv-$version"
if ! "$home/bin/uv" --version 2>/dev/null | grep -q "^uv $version\b"; then
  echo "uv.sh: installing uv $version in $home" >&2
  rm -rf "$home"
  mkdir -p "$(dirname "$home")"
  if ! "$python" -m venv "$home" 2>/dev/null; then  # Debian's python3 makes venvs only with python3-venv
    rm -rf "$home"
    minor=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends python3-venv "python$minor-venv" >&2
    "$python" -m venv "$home"
  fi
  "$home/bin/python" -m pip install -q --disable-pip-version-check --no-deps --require-hashes \
    -r "$here/uv-requirements.txt" 2>&1 | grep -v '^WARNING: Location' >&2 || true
  "$home/bin/uv" --version >/dev/null # fail here, not later, if the install broke
fi
export UV_PYTHON="$python" UV_PYTHON_DOWNLOADS=never
exec "$home/bin/uv" "$@"
