# Two entry points for a newcomer: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
# On these machines `torch==2.13.0` is a CPU wheel on local disk; elsewhere pip takes it from
# your usual index. Override with e.g. `make TORCH_SPEC=torch test`.
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: demo test env clean-env

env: $(STAMP)

$(STAMP): pyproject.toml tools/install_lava.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) tools/install_lava.py
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m lava_runtime demo --out runs/demo

# The report test opens the HTML page in headless Chromium (Debian's package; installed with
# apt-get when missing and run as root, else the script says how and that test is skipped).
test: $(STAMP)
	sh tools/ensure_chromium.sh
	$(PY) -m pytest -q

clean-env:
	rm -rf $(VENV)
