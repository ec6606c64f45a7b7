# The README names these targets. Everything installs what it needs itself.
PYTHON ?= python3

.PHONY: setup demo test unit bench lint

setup:            ## Debian packages (docker.io, docker-registry, …) and damso with its test extras
	bash scripts/setup.sh

demo: setup       ## build a demo app from a local git repo and deploy it to the sandbox, end to end
	$(PYTHON) scripts/demo.py

test: setup       ## the whole suite: unit tests and integration tests against real parts
	$(PYTHON) -m pytest

unit:             ## only the fast tests that need no daemon
	$(PYTHON) -m pytest -m "not integration"

bench: setup      ## speed figures, measured side by side
	$(PYTHON) bench/build_bench.py
	$(PYTHON) bench/deploy_bench.py

lint:
	terraform fmt -check -recursive terraform
