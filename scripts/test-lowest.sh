#!/usr/bin/env bash
# make test-lowest: damso at the lowest versions pyproject.toml allows for each of its direct
# dependencies (what an old `pip install damso-ops` may still give a user), in .venv-lowest,
# built afresh each time. uv.lock is not touched: it stays the newest versions, what
# `make test` runs.
#
# Runs the unit tests (the bad-input corpus included, through .venv-lowest/bin/damso) and one
# sandbox deploy with --converge-local (scripts/demo.py: the emulator, Terraform, the host's
# reconcile unit on this machine's engine).
set -euo pipefail
cd "$(dirname "$0")/.."
uv="scripts/uv.sh"
venv=.venv-lowest

"$uv" venv -q --clear "$venv"
# --resolution lowest-direct: each dependency pyproject.toml names at its lower bound; what they
# need in turn at the newest their own ranges allow (the lowest of those would test their
# authors' bounds, not ours).
"$uv" pip install -q --python "$venv/bin/python" --resolution lowest-direct -e '.[test]'
echo "test-lowest: direct dependencies at their lower bounds:"
"$venv/bin/python" - <<'PY'
import importlib.metadata as m, re
reqs = m.distribution("damso-ops").requires or []
names = sorted({re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0] for r in reqs})
print("  " + ", ".join(f"{n} {m.version(n)}" for n in names))
PY

"$venv/bin/python" -m pytest -q -p no:cacheprovider -m "not integration" -n 2 tests/unit
"$venv/bin/python" scripts/demo.py
echo "test-lowest: passed"
