# Two commands for a fresh machine with Python 3.11:  `make book`  and  `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup book test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install -r requirements.txt
	touch $@

book: setup        ## set up, then build the whole book into _build/html
	PATH="$(abspath $(BIN)):$$PATH" jupyter-book build book/

test: setup        ## set up, then run the test suite
	WANDB_MODE=disabled $(BIN)/python -m pytest

bench: setup       ## benchmarks (ratios; not part of the tests)
	$(BIN)/python benchmarks/unit_benchmarks.py

clean:
	rm -rf _build results runs
