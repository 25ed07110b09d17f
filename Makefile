# Two commands do all set-up on a fresh machine: `make run` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test install demo bench bench-pages lint-bpmn tables clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## make run: install, create the embedded SQLite database with demo data (once), serve the web app
run: install
	$(VENV)/bin/xiaowei demo
	$(VENV)/bin/xiaowei serve --host $(HOST) --port $(PORT)

## make test: install and run the whole suite (DATABASE_URL=postgresql://… runs it on PostgreSQL)
test: install
	$(PY) -m pytest -n auto -q

bench: install
	$(PY) bench/bench_engine.py

## make bench-pages: latency of /tasks, /cases and a case trail on 10,000 cases (SQLite, PostgreSQL)
bench-pages: install
	$(PY) bench/bench_pages.py

lint-bpmn: install
	$(VENV)/bin/xiaowei lint processes/

## regenerate processes/*.bpmn from the step tables in processes/tables/
tables: install
	$(PY) -m engine.steptable --all

clean:
	rm -rf $(VENV) xiaowei.db xiaowei.db-wal xiaowei.db-shm
