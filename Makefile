# Two entry points of a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup setup-dev demo test test-slow lint

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

setup: $(BIN)/activate
	$(BIN)/pip install -q -e .

setup-dev: $(BIN)/activate
	$(BIN)/pip install -q -e ".[dev]"

demo: setup
	$(BIN)/rlattack compare --agent pong-dqn --attack fgsm --norm inf --eps 0.002 --eps 0.004 \
		--episodes 2 --envs 2 --out demo

lint: setup-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest -q

test-slow: setup-dev
	$(BIN)/pytest -q -m slow
