# The README names these targets. Everything installs what it needs itself.
PYTHON ?= python3

.PHONY: setup demo test unit bench lint

setup:            ## Debian packages (docker.io, docker-registry, …) and damso with its test extras
	bash scripts/setup.sh

demo: setup       ## build a demo app from a local git repo and deploy it to the sandbox, end to end
	$(PYTHON) scripts/demo.py

test: setup       ## the whole suite: unit tests and integration tests against real parts, 3 test files at a time
	$(PYTHON) -m pytest -n 3 --dist loadfile --durations=15

unit:             ## only the fast tests that need no daemon
	$(PYTHON) -m pytest -m "not integration"

bench: setup      ## speed figures, measured side by side, then one table: each measure, its goal, met or not
	@out=$$(mktemp -d); rc=0; \
	  $(PYTHON) bench/build_bench.py --json $$out/build.json || rc=1; \
	  $(PYTHON) bench/deploy_bench.py --json $$out/deploy.json || rc=1; \
	  $(PYTHON) bench/summary.py $$out/build.json $$out/deploy.json; rm -rf $$out; exit $$rc

lint:
	terraform fmt -check -recursive terraform
