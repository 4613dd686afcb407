# nightpipe: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= demo
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint bench clean serve web-assets

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/nightpipe doctor --warm  # compile the kernels once now, not in the first night (issue 22)
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

VENDOR := src/nightpipe/web/static/vendor
ASSETS := $(VENDOR)/.installed-$(shell cat web/package-lock.json | cksum | cut -d' ' -f1)

# The web app's JavaScript, from npm (pinned in web/package-lock.json), served by the app itself.
$(ASSETS): web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund --silent
	mkdir -p $(VENDOR)
	rm -f $(VENDOR)/.installed-*
	cp web/node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/
	cp web/node_modules/uplot/dist/uPlot.iife.min.js web/node_modules/uplot/dist/uPlot.min.css $(VENDOR)/
	cp web/node_modules/aladin-lite/dist/aladin.js $(VENDOR)/
	touch $(ASSETS)

## web-assets: fetch the web app's JavaScript from npm into the app's static folder
web-assets: $(ASSETS)

## serve: set up, then start the web app on http://localhost:8700/ (nightpipe serve)
serve: $(STAMP) $(ASSETS)
	$(BIN)/nightpipe serve

## demo: set up, generate (or reuse) the demo night and run the whole pipeline on it
demo: $(STAMP)
	$(BIN)/nightpipe demo $(DEMO)

## test: set up, then lint, type-check and run the whole test suite
test: $(STAMP) $(ASSETS)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadgroup

## bench: the benchmark suite (not part of `make test`)
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(DEMO) web/node_modules $(VENDOR) .pytest_cache .mypy_cache .ruff_cache
