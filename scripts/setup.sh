#!/usr/bin/env bash
# Installs what damso's tests and demo need on Debian 12; fast when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(docker.io docker-registry busybox-static docker-compose shellcheck git)
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
import pathlib, damso_ops, bcrypt, yaml, pytest, moto, docker, git, python_terraform, typer, jinja2, jwt, filelock
assert pathlib.Path(damso_ops.__file__).resolve().parent.parent == pathlib.Path.cwd().resolve()
PY
then
  python3 -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 \
    | grep -v -e '^WARNING: Location' -e 'Running pip as the' || true
fi
python3 -c "import damso_ops, docker, boto3, moto, pytest" # fail here, not in the tests, if the install broke
command -v terraform >/dev/null || echo "setup: warning: terraform is not on the PATH; deploy tests need it" >&2
