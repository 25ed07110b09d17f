# Two commands do all set-up on a fresh machine: `make run` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test lint install demo bench bench-pages bench-throughput lint-bpmn tables messages clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# bpmn-js for the flowchart modeler page: installed from npm (package.json / package-lock.json), never
# committed; the dist files the page loads are copied into webui/static/vendor/ (gitignored).
VENDOR := webui/static/vendor/bpmn-js
$(VENDOR)/.stamp: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is missing: apt-get install nodejs npm" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(VENDOR)
	mkdir -p $(VENDOR)
	cp node_modules/bpmn-js/dist/bpmn-modeler.production.min.js $(VENDOR)/
	cp -R node_modules/bpmn-js/dist/assets $(VENDOR)/assets
	touch $@

install: $(STAMP) $(VENDOR)/.stamp

## make run: install, create the embedded SQLite database with demo data (once), serve the web app
run: install
	$(VENV)/bin/xiaowei demo
	$(VENV)/bin/xiaowei serve --host $(HOST) --port $(PORT)

## make test: install, check the import rule and lint, run the whole suite (DATABASE_URL=postgresql://… runs
## it on PostgreSQL; there the tests that open no database are skipped: the SQLite pass ran them)
test: install lint
	$(PY) -m pytest -n auto -q

## make lint: the import rule of docs/architecture.md (import-linter) and ruff
lint: install
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .

## make bench [BENCH_ARGS="--cases N --loops N"]: completion through Xiaowei vs the bare SpiffWorkflow loop
bench: install
	$(PY) bench/bench_engine.py $(BENCH_ARGS)

## make bench-throughput: completions per second over HTTP with 1 and 2 gunicorn workers (PostgreSQL)
bench-throughput: install
	$(PY) bench/bench_throughput.py $(BENCH_ARGS)

## make bench-pages [BENCH_ARGS="--cases N --processes N"]: the eight everyday pages on 10,000 engine-made cases (SQLite, PostgreSQL)
bench-pages: install
	$(PY) bench/bench_pages.py $(BENCH_ARGS)

lint-bpmn: install
	$(VENV)/bin/xiaowei lint processes/

## regenerate processes/*.bpmn from the step tables in processes/tables/
tables: install
	$(PY) -m engine.bpmn.steptable --all

## update the English catalogue from the strings marked in webui/ (then translate the new empty entries)
messages: install
	$(VENV)/bin/pybabel extract -F babel.cfg --no-location --sort-output -o webui/translations/messages.pot .
	test -f webui/translations/en/LC_MESSAGES/messages.po || \
		$(VENV)/bin/pybabel init -i webui/translations/messages.pot -d webui/translations -l en
	$(VENV)/bin/pybabel update -i webui/translations/messages.pot -d webui/translations -l en --no-fuzzy-matching \
		--ignore-obsolete
	rm webui/translations/messages.pot

clean:
	rm -rf $(VENV) xiaowei.db xiaowei.db-wal xiaowei.db-shm
