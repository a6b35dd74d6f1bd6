# Two commands on a fresh machine: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= hermes.toml

.PHONY: run test check lint bench clean setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# A working config for this checkout: data under ./var, embedded NATS and SQLite.
$(CONFIG): hermes.toml.example
	@if [ -f $(CONFIG) ]; then touch $(CONFIG); else \
	  sed -e 's|^data_dir = .*|data_dir = "./var"|' \
	      -e 's|^smsc_listen = .*|smsc_listen = "127.0.0.1:2776"|' \
	      -e '/^\[gateway.smpp\]/,/^\[/ s|^listen = .*|listen = "127.0.0.1:2775"|' \
	      -e '/^\[gateway.smpp\]/,/^\[/ s|^enabled = .*|enabled = true|' hermes.toml.example > $(CONFIG) && \
	  echo "wrote $(CONFIG) (data under ./var, SMPP for tenants on 127.0.0.1:2775, carrier simulator on 127.0.0.1:2776)"; fi

run: $(STAMP) $(CONFIG)
	@mkdir -p var
	exec $(BIN)/hermesd --config $(CONFIG)

test: $(STAMP)
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	@for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
