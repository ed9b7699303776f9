# libedge: two commands for a person, a few more for a developer.
#   make demo   set up .venv if needed, then run the whole library site on simulators
#   make test   set up .venv if needed, then static checks and the whole test suite
#   make check  static checks only (ruff, mypy strict, import layers)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.libedge-installed
PYTHON ?= python3

.PHONY: demo test check install system-deps format clean

install: $(STAMP)

# Reinstall only when the package metadata changed; an editable install sees code edits as they are.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

$(PY):
	@bash scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)

system-deps:
	@bash scripts/system-deps.sh

check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: system-deps check
	$(VENV)/bin/pytest

demo: system-deps install
	$(VENV)/bin/libedge demo

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info

# Regenerate the committed contract documents from the models (a test fails when they drift).
.PHONY: contract
contract: install
	$(VENV)/bin/libedge contract export docs/schemas
	mv docs/schemas/asyncapi.yaml docs/asyncapi.yaml

# Run every benchmark, each in a process of its own, and write docs/benchmarks.md (figures beside
# their raw baselines, targets, the machine). A full run takes a while; exits 1 if one crashed.
.PHONY: bench
bench: install
	$(VENV)/bin/python -m benchmarks report --out docs/benchmarks.md
