# nas-skip: `make demo` and `make test` are the two commands a new user needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TORCH  := 2.13.0

.PHONY: install test lint demo bench clean

install: $(STAMP)

# The CPU build of torch goes in first where no GPU is present: a plain `torch`
# requirement with no torch installed would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	    $(PY) -m pip install -q "torch==$(TORCH)"; \
	else \
	    $(PY) -m pip install -q "torch==$(TORCH)+cpu" \
	    || $(PY) -m pip install -q --retries 1 "torch==$(TORCH)+cpu" \
	         --extra-index-url https://download.pytorch.org/whl/cpu; \
	fi
	$(PY) -m pip install -q -e ".[dev]"
	# the browser tests drive Debian's Chromium (never a downloaded browser)
	command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check nas_skip tests scripts
	$(VENV)/bin/ruff format --check nas_skip tests scripts
	$(VENV)/bin/mypy

# two pytest-xdist workers, the CI machine's cores; the tests that start Ray or use
# PostgreSQL share one of them (tests/conftest.py)
test: lint
	$(VENV)/bin/pytest -q -n 2 --dist loadgroup

demo: $(STAMP)
	$(PY) scripts/demo.py

bench: $(STAMP)
	$(PY) scripts/bench_compile.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache runs
