# Two commands matter: `make run` (install + the main job end to end) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SELDON_VENV ?= .venv-seldon
SELDON_STAMP := $(SELDON_VENV)/.installed
REFERENCE_VENV ?= .venv-reference
REFERENCE_STAMP := $(REFERENCE_VENV)/.installed
PYTHON312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12))
STATE_DIR ?= .recsys
EVENTS ?= 200000
BUS_PORT ?= 6380
VERSION := $(shell sed -n 's/^version = //p' setup.cfg)
IMAGE ?= localhost/recsys:$(VERSION)
SERVING_IMAGE ?= localhost/recsys-serving:$(VERSION)
SPARK_IMAGE ?= localhost/recsys-spark:$(VERSION)
STREAM_IMAGE ?= localhost/recsys-stream:$(VERSION)
SELDON_V1_IMAGE ?= localhost/recsys-seldon-v1:$(VERSION)
PYTHON312_BASE_IMAGE ?= localhost/python:3.12-bookworm
IMAGE_INPUTS ?= unlabelled
BASE_IMAGE ?= localhost/debian:bookworm
SHIPPED_FOLDERS := $(shell sed -n 's/^shipped_folders = //p' setup.cfg)
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt

.DEFAULT_GOAL := help
.PHONY: help install static-import-path lock seldon-v1-env reference-env services bus-redis run test test-unit lint docs bench compile serve stream reports experiment base-image python312-base-image image build-images kube-play run-containers run-compiled clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install the project with pinned dependencies

seldon-v1-env: $(SELDON_STAMP) ## build the Python 3.12 environment of the seldon-core v1 wrapper (.venv-seldon)

reference-env: $(REFERENCE_STAMP) ## build the environment of the published reference models (.venv-reference: cornac, CPU PyTorch)

run: install ## generate a sample shop and run the main job end to end on the embedded default
	@$(MAKE) --no-print-directory _run

services: ## start Redis and PostgreSQL when not running, install Chromium when missing
	bash tests/services.sh

test: install seldon-v1-env reference-env services ## run the whole test suite (unit + integration + slow)
	@$(MAKE) --no-print-directory _test

test-unit: install ## the fast tier: no server, nothing slow (under 90 s)
	$(BIN)/pytest -m "not integration and not slow" -q

lint: install ## ruff, the import-layer contracts and the type checker (mypy)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy $(foreach p,$(SHIPPED_FOLDERS),-p recsys.$(p))

docs: install ## regenerate docs/configuration.md (from Settings) and docs/benchmarks.md (from results)
	$(BIN)/python -m recsys.tools.docs_pages

bench: install ## run every benchmark, write benchmarks/results/*.json, regenerate docs/benchmarks.md
	RECSYS_BENCHMARK_DATA=$${RECSYS_BENCHMARK_DATA:-../shared/data} $(BIN)/recsys bench all
	$(BIN)/python -m recsys.tools.docs_pages

compile: install ## compile the Kubeflow pipelines and recurring runs to build/
	$(BIN)/recsys pipeline compile --out build

serve: install ## serve the registry champion with MLServer on :8080 (REST) / :8081 (gRPC), after make run
	RECSYS_STATE_DIR=$(STATE_DIR) $(BIN)/python -m recsys.serving.server start serving/model_repository

bus-redis: ## start the event bus's durable Redis (infra/redis/bus.conf) on :$(BUS_PORT), data in $(STATE_DIR)/redis-bus
	@mkdir -p $(STATE_DIR)/redis-bus
	@redis-cli -p $(BUS_PORT) ping >/dev/null 2>&1 || redis-server infra/redis/bus.conf \
	  --port $(BUS_PORT) --dir $(abspath $(STATE_DIR))/redis-bus --daemonize yes \
	  --pidfile $(abspath $(STATE_DIR))/redis-bus/redis.pid \
	  --logfile $(abspath $(STATE_DIR))/redis-bus/redis.log
	@echo "event bus Redis on 127.0.0.1:$(BUS_PORT) (AOF, fsync on every write)"

stream: install bus-redis ## collector on :8090 + session-feature processor + lake sink on the durable bus Redis
	RECSYS_STATE_DIR=$(STATE_DIR) RECSYS_BUS_REDIS_URL=redis://127.0.0.1:$(BUS_PORT)/0 \
	  $(BIN)/recsys stream up --port 8090

experiment: install bus-redis ## a 30/35/35 online A/B test on simulated shoppers for two (compressed) weeks, then its report (after make run)
	@test -f $(STATE_DIR)/mlflow.db || $(MAKE) --no-print-directory _run
	RECSYS_STATE_DIR=$(STATE_DIR) RECSYS_BUS_REDIS_URL=redis://127.0.0.1:$(BUS_PORT)/0 \
	  $(BIN)/recsys experiment simulate ab-30-35-35-$$(date +%Y%m%d-%H%M%S) --events $(EVENTS) \
	  --days 14 --out $(STATE_DIR)/experiments/latest

reports: install ## run drift monitoring once and open the Evidently UI on :8000 (after make run)
	RECSYS_STATE_DIR=$(STATE_DIR) $(BIN)/recsys monitor run
	RECSYS_STATE_DIR=$(STATE_DIR) $(BIN)/recsys monitor ui --port 8000

base-image: ## Debian bookworm base image for podman, made with debootstrap (no registry pull)
	@bash infra/container_tools.sh
	@podman image exists $(BASE_IMAGE) || bash infra/base_image.sh $(BASE_IMAGE)

python312-base-image: base-image ## the seldon-core v1 wrapper's Python 3.12 base: bookworm + this machine's CPython 3.12
	@podman image exists $(PYTHON312_BASE_IMAGE) || bash infra/python312_image.sh "$(PYTHON312)" $(PYTHON312_BASE_IMAGE) $(BASE_IMAGE)

image: base-image ## build the project image ($(IMAGE): pipeline steps), the stream, the serving, the Spark and the seldon-core v1 image
	@inputs=$$(python3 infra/image_inputs.py); current=yes; \
	for image in $(IMAGE) $(STREAM_IMAGE) $(SERVING_IMAGE) $(SPARK_IMAGE) $(SELDON_V1_IMAGE); do \
	  label=$$(podman image inspect --format '{{ index .Labels "recsys.inputs" }}' $$image 2>/dev/null) || label=; \
	  [ "$$label" = "$$inputs" ] || current=no; \
	done; \
	if [ $$current = yes ]; then echo "images up to date (inputs $$inputs)"; \
	else $(MAKE) --no-print-directory build-images IMAGE_INPUTS=$$inputs; fi

build-images: base-image python312-base-image ## build the five images whatever they hold (labelled with IMAGE_INPUTS)
	podman build --network host --format docker --secret id=pipcert,src=$(CA_BUNDLE) \
	  --label recsys.inputs=$(IMAGE_INPUTS) \
	  --build-arg BASE_IMAGE=$(BASE_IMAGE) -f infra/Dockerfile -t $(IMAGE) .
	podman build --network host --format docker --secret id=pipcert,src=$(CA_BUNDLE) \
	  --label recsys.inputs=$(IMAGE_INPUTS) \
	  --build-arg BASE_IMAGE=$(BASE_IMAGE) -f infra/Dockerfile.stream -t $(STREAM_IMAGE) .
	podman build --network host --format docker --build-arg PROJECT_IMAGE=$(IMAGE) \
	  --label recsys.inputs=$(IMAGE_INPUTS) \
	  -f infra/Dockerfile.serving -t $(SERVING_IMAGE) .
	podman build --network host --format docker --secret id=pipcert,src=$(CA_BUNDLE) \
	  --label recsys.inputs=$(IMAGE_INPUTS) \
	  --build-arg PROJECT_IMAGE=$(IMAGE) -f infra/Dockerfile.spark -t $(SPARK_IMAGE) .
	podman build --network host --format docker --secret id=pipcert,src=$(CA_BUNDLE) \
	  --label recsys.inputs=$(IMAGE_INPUTS) \
	  --build-arg BASE_IMAGE=$(PYTHON312_BASE_IMAGE) -f infra/Dockerfile.seldon-v1 -t $(SELDON_V1_IMAGE) .

kube-play: install image ## the dev overlay's manifests in containers (podman kube play), checked end to end, then torn down
	$(BIN)/python -m recsys.tools.kube_play

run-containers: install image ## the main job with every step in the project image (podman), on the production profile
	$(BIN)/python -m recsys.tools.container_run --events $(EVENTS)

run-compiled: install image ## the compiled pipeline YAML loaded back and run as compiled, every step in the project image
	$(BIN)/python -m recsys.tools.container_run --compiled --events $(EVENTS)

# Keeps every pin that still fits; `make lock LOCK_ARGS=--upgrade` takes the newest releases.
# The project itself (its extras name each other) and the installers stay out of the locks.
PIP_COMPILE = --quiet --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS) \
  $(foreach p,recsys-mlops setuptools pip distribute,--unsafe-package $(p))

lock: install ## refresh the pins with their provenance: constraints.txt (the platform) and constraints-stream.txt (the stream image)
	$(BIN)/python -m pip install --quiet "pip-tools>=7.5,<8"
	$(BIN)/pip-compile $(PIP_COMPILE) \
	  --extra all --extra test --extra spark --extra neural -o constraints.txt setup.cfg
	$(BIN)/pip-compile $(PIP_COMPILE) \
	  --extra stream --extra kafka --extra avro -o constraints-stream.txt setup.cfg
	@for extra in stream kafka avro postgres models serving monitoring pipeline spark all; do \
	  echo "resolving .[$$extra] within constraints.txt"; \
	  $(BIN)/python -m pip install --quiet --dry-run --ignore-installed -c constraints.txt ".[$$extra]" || exit 1; \
	done

clean: ## remove local state and build output (keeps .venv)
	rm -rf $(STATE_DIR) build

$(STAMP): setup.cfg constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" "setuptools>=68,<81" wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[all,test,spark,neural]'
	$(MAKE) --no-print-directory static-import-path
	touch $(STAMP)

# The editable install maps `recsys` to this folder with an import hook, which type checkers
# and IDEs do not run: a link named recsys to the checkout, on the venv's path (.pth), lets
# them resolve `import recsys.<folder>` to the same files the interpreter imports.
static-import-path:
	mkdir -p $(VENV)/static-path && ln -sfn "$(CURDIR)" $(VENV)/static-path/recsys
	echo "$(abspath $(VENV))/static-path" > \
	  $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/recsys-static-path.pth

$(SELDON_STAMP): setup.cfg serving/seldon_v1_requirements.txt
	test -x $(SELDON_VENV)/bin/python || $(PYTHON312) -m venv $(SELDON_VENV)
	$(SELDON_VENV)/bin/python -m pip install --quiet -r serving/seldon_v1_requirements.txt
	$(SELDON_VENV)/bin/python -m pip install --quiet --no-deps -e .
	touch $(SELDON_STAMP)

$(REFERENCE_STAMP): benchmarks/reference/requirements.txt
	test -x $(REFERENCE_VENV)/bin/python || $(PYTHON) -m venv $(REFERENCE_VENV)
	$(REFERENCE_VENV)/bin/python -m pip install --quiet -r benchmarks/reference/requirements.txt
	touch $(REFERENCE_STAMP)

_run:
	RECSYS_STATE_DIR=$(STATE_DIR) $(BIN)/recsys run --events $(EVENTS)

_test:
	$(BIN)/pytest -q --durations=30
