# SpotOn — one entry point for setup, the demo, tests and benchmarks. Python 3.11, Debian/Ubuntu.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# torch is pinned and installed first (from local disk where it lies there): an unpinned torch would make pip
# resolve a multi-GB download. torchvision is needed by ultralytics and boxmot.
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: install weights protos manifests demo-data demo test lint format bench clean images smoke-images

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[dev]'
	$(PIP) check
	touch $@

install: $(VENV)/.installed weights/.ready

weights/.ready: $(VENV)/.installed spoton/setup_weights.py reid_svc/export.py
	$(PY) -m spoton.setup_weights
	$(PY) -m reid_svc.export
	touch $@

weights: weights/.ready

protos: $(VENV)/.installed
	$(PY) -m spoton.protogen

## k8s/manifests/spoton.yaml from the Helm chart's default values, schema-checked (Helm's Go SDK, no binary).
manifests: $(VENV)/.installed
	$(PY) -m spoton.helmchart

demo-data: install
	$(PY) -m spoton.demo.generate

## The demo: sets up what is missing, starts all six services and a session over the demo cameras.
demo: install
	$(PY) -m spoton.demo.run

## The tests (what .ci/run calls). Needs PostgreSQL on 127.0.0.1:5432 (database test) and the shared data.
test: install
	$(PY) -m pytest -q --durations=25

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	cd protos && ../$(VENV)/bin/buf lint

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) bench/detection_eval.py --every 10
	$(PY) bench/e2e.py

## Container images (bench/images.py): podman where installed, else docker. `make images` builds the six service
## images REGISTRY/<name>:IMAGE_TAG (the names the Helm chart renders with image.registry=REGISTRY); PYTHON_IMAGE is
## the base (default: Python 3.11 from Debian's packages on a debootstrap'd bookworm, built first where missing: no
## registry needed); IMAGE_TORCH is the Dockerfile's TORCH for detection, tracking and reid: pypi (the pinned wheels
## of `make install`, from the configured package index), cpu (download.pytorch.org's CPU wheels, smaller) or cuda.
REGISTRY     ?= spoton
IMAGE_TAG    ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE_TORCH  ?= pypi
PYTHON_IMAGE ?= localhost/spoton-python:3.11-bookworm
IMAGES_ARGS  := --registry $(REGISTRY) --tag $(IMAGE_TAG) --torch $(IMAGE_TORCH) --python-image $(PYTHON_IMAGE)

images:
	$(PYTHON) bench/images.py build $(IMAGES_ARGS)

## The six images plus PostgreSQL and Redis containers on one network, a 50-step demo session through the gateway
## container, scored; not in CI (minutes). API_KEYS from the environment goes to every service and the client.
smoke-images: $(VENV)/.installed
	test -f build/demo/demo.yaml || $(PY) -m spoton.demo.generate
	$(PY) bench/images.py smoke $(IMAGES_ARGS)

clean:
	rm -rf build .spoton .pytest_cache .ruff_cache
