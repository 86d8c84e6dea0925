# Weft: `make run` starts the studio, `make test` runs the whole suite.
# Both create .venv on first use and keep it in step with the requirements files.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8188
ARGS   ?=

.PHONY: run test test-fast browser-deps gl-deps comfyui-frontend ray bench starter-model eval-starter clean-venv

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime-installed $@

run: $(VENV)/.runtime-installed
	$(PY) server.py --listen $(HOST) --port $(PORT) $(ARGS)

# ComfyUI's own frontend, its workflow templates and node docs, for `--front-end comfyui`
# (then: make run ARGS="--front-end comfyui"). Optional: Weft's editor needs none of it.
comfyui-frontend: $(VENV)/.runtime-installed
	$(PY) -m pip install --quiet -r requirements-frontend.txt

# Ray, to run the workers as Ray actors (then: make run ARGS="--ray auto"; docs/scale-out.md).
ray: $(VENV)/.runtime-installed
	$(PY) -m pip install --quiet -r requirements-ray.txt

# Browser tests drive Debian's Chromium and the editor's model tests run under Node.js; as root
# (CI) whichever is missing is installed from Debian's packages.
browser-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing:$$missing — install these Debian packages (browser and editor tests need them)"; \
	  fi; \
	fi

# GLSLShader renders through Mesa's EGL (software rasteriser without a GPU); as root (CI) the
# Debian packages are installed when missing.
GL_PACKAGES := libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri
gl-deps:
	@missing=""; \
	for pkg in $(GL_PACKAGES); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing:$$missing — install these Debian packages (GLSLShader needs them)"; \
	  fi; \
	fi

# Two passes. Tests that mostly wait on real server processes, sockets and timeouts run three at a
# time (pytest-xdist; tests/api took 230 s one at a time and 126 s so on 2 cores); the tests that
# assert latency under load, and everything else (CPU-bound, or one shared browser), one at a time.
WAITING_TESTS := tests/api tests/workers tests/clients
LATENCY_TESTS := tests/api/test_slow_clients.py tests/api/test_serving.py
# Every other test folder and top-level test file (tests/web, alphabetically last of the folders,
# stays after the rest).
SERIAL_TESTS := $(LATENCY_TESTS) $(filter-out $(WAITING_TESTS) tests/__pycache__,$(patsubst %/,%,$(wildcard tests/*/))) \
	$(wildcard tests/test_*.py)
test: $(VENV)/.dev-installed browser-deps gl-deps
	$(PY) -m pytest -q -n 3 $(WAITING_TESTS) $(addprefix --ignore=,$(LATENCY_TESTS))
	$(PY) -m pytest -q $(SERIAL_TESTS)

# The suite without the browser tests, for a quick loop while coding.
test-fast: $(VENV)/.dev-installed gl-deps
	$(PY) -m pytest -q -n 3 -m "not browser" $(WAITING_TESTS) $(addprefix --ignore=,$(LATENCY_TESTS))
	$(PY) -m pytest -q -m "not browser" $(SERIAL_TESTS)

# The shipped starter model, retrained from scratch (resumable: rerun to continue), and its scores.
starter-model: $(VENV)/.runtime-installed
	$(PY) -m ldm.training.starter --out models/checkpoints/weft-starter.safetensors

eval-starter: $(VENV)/.runtime-installed
	$(PY) -m ldm.training.evaluate models/checkpoints/weft-starter.safetensors

# Weft against diffusers on whatever device is present: bench/results/<device>.json + bench/README.md.
bench: $(VENV)/.dev-installed
	$(PY) -m bench.run $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
