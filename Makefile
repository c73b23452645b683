# Two entry points for a newcomer: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
# On these machines `torch==2.13.0` is a CPU wheel on local disk; elsewhere pip takes it from
# your usual index. Override with e.g. `make TORCH_SPEC=torch test`.
TORCH_SPEC ?= torch==2.13.0
# The patched lava-nc, lava-dl and neurobench wheels (tools/patched_wheels.py), in the project's
# cache folder outside the clone, so a second clone or `make clean-env` reuses them.
WHEELS ?= $(or $(DELAYSNN_CACHE),$(HOME)/.cache/delaysnn)/wheels
PIP    := $(PY) -m pip install --quiet --find-links $(WHEELS)
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test env clean-env

env: $(STAMP)

# Each long step prints one line first (pip runs --quiet).
$(STAMP): pyproject.toml tools/patched_wheels.py
	@echo "make: [1/4] $(VENV): creating it with $(PYTHON) if missing, upgrading pip, installing wheel"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel
	@echo "make: [2/4] installing $(TORCH_SPEC) (a large download where pip has no cached copy)"
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	@echo "make: [3/4] building the patched Lava and NeuroBench wheels in $(WHEELS)"
	$(PY) tools/patched_wheels.py --wheels $(WHEELS)
	@echo "make: [4/4] installing delaysnn and its dependencies (lava-nc, lava-dl, dcls, onnx, ...)"
	$(PIP) -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	@echo "make: installing the test extra (pytest, NeuroBench, snntorch, rockpool, ruff, mypy)"
	$(PIP) -e ".[test]"
	@echo "make: installing norse without its torchvision (pyproject.toml, test extra)"
	$(PIP) --no-deps norse==1.1.0
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(PY) -m lava_runtime demo --out runs/demo

# The report test opens the HTML page in headless Chromium (Debian's package; installed with
# apt-get when missing and run as root, else the script says how and that test is skipped).
# The tts-digits dataset's tests need espeak-ng and flite (Debian's packages, installed the same way).
test: $(TEST_STAMP)
	@echo "make: ruff check . (lint: pycodestyle, pyflakes, import order; pyproject.toml)"
	$(VENV)/bin/ruff check .
	@echo "make: mypy (type check of the non-test packages; pyproject.toml)"
	$(VENV)/bin/mypy
	@echo "make: checking for Chromium (installs Debian's package when missing and root)"
	sh tools/ensure_chromium.sh
	@echo "make: checking for espeak-ng and flite (the tts-digits dataset; Debian's packages when root)"
	sh tools/ensure_espeak.sh
	@echo "make: running the test suite (pytest: the longest step, see README Install notes)"
	$(PY) -m pytest -q

clean-env:
	rm -rf $(VENV)
