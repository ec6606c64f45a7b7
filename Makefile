# The README names these targets. Everything installs what it needs itself, and
# every Python command runs in the project's own environment, .venv, built from uv.lock.
PYTHON := .venv/bin/python

.PHONY: setup demo test unit bench lint lock test-lowest prove-debian13

setup:            ## Debian packages (docker.io, docker-registry, …), then .venv exactly as uv.lock says
	bash scripts/setup.sh

demo: setup       ## build a demo app from a local git repo and deploy it to the sandbox, end to end
	$(PYTHON) scripts/demo.py

test: setup       ## the whole suite: unit tests and integration tests against real parts, 4 test files at a time
	$(PYTHON) -m pytest -n 4 --dist loadfile --no-loadscope-reorder --durations=15

unit: setup       ## only the fast tests that need no daemon
	$(PYTHON) -m pytest -m "not integration"

lock:             ## update uv.lock on purpose: the newest versions pyproject.toml allows (then run make test)
	scripts/uv.sh lock --upgrade && git diff --stat -- uv.lock

test-lowest: setup  ## the lowest versions pyproject.toml allows, in .venv-lowest: unit tests, bad-input corpus, a sandbox deploy
	bash scripts/test-lowest.sh

prove-debian13:   ## on demand, slow (about 7 min), not in make test: setup and make demo in a Debian 13 systemd machine container
	bash scripts/prove-debian13.sh

bench: setup      ## speed figures, measured side by side, then one table: each measure, its goal, met or not
	@out=$$(mktemp -d); rc=0; \
	  $(PYTHON) bench/build_bench.py --json $$out/build.json || rc=1; \
	  $(PYTHON) bench/deploy_bench.py --json $$out/deploy.json || rc=1; \
	  $(PYTHON) bench/summary.py $$out/build.json $$out/deploy.json; rm -rf $$out; exit $$rc

lint:
	terraform fmt -check -recursive terraform
