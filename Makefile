# Every target builds its own virtualenv; nothing needs installing by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Two stamps on one virtualenv: `make demo`/`serve` install the package and its `demo`
# extra only (what they run); `make test` adds the `dev` tools (which include `demo`).
STAMP      := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: venv test lint typecheck pytest demo serve bench bench-service clean mutate test-llm-oldest

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip uninstall --quiet --yes tracing 2>/dev/null || true  # the pre-0.2 distribution name
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip uninstall --quiet --yes tracing 2>/dev/null || true  # the pre-0.2 distribution name
	$(BIN)/pip install --quiet -e '.[demo]'
	touch $(DEMO_STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff format --check tracing tests benchmarks examples
	$(BIN)/ruff check tracing tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy tracing
	$(BIN)/mypy tests examples

# JUnit XML and the slowest tests go to .ci-out/, so a failed run can be read afterwards.
pytest: $(STAMP) chromium postgresql strace
	$(BIN)/pytest --junitxml=.ci-out/junit.xml --durations=25

test: lint typecheck pytest

# The viewer's browser tests drive Debian's Chromium (never a downloaded build).
CHROMIUM := /usr/bin/chromium
.PHONY: chromium
chromium:
	@test -x $(CHROMIUM) || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

# The collector's PostgreSQL tests start their own server from Debian's binaries
# (initdb into a temporary directory; tests/_postgres.py).
.PHONY: postgresql
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get -o DPkg::Lock::Timeout=600 \
	    install -y -qq --no-install-recommends postgresql; }

# The spool's fsync tests trace a child's writev/fsync calls with Debian's strace.
.PHONY: strace
strace:
	@command -v strace >/dev/null 2>&1 || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get -o DPkg::Lock::Timeout=600 \
	    install -y -qq --no-install-recommends strace; }

# `make demo`: collector + agent workload + summary; `make serve`: browse the result.
DEMO_DB    := .demo/collector.db
SERVE_ARGS ?=

demo: $(DEMO_STAMP)
	$(BIN)/python examples/demo.py --db $(DEMO_DB)

serve: $(DEMO_STAMP)
	$(BIN)/python -m tracing.collector --db $(DEMO_DB) $(SERVE_ARGS)

# `make bench`: this SDK vs its peers and two floors over loopback (benchmarks/README.md).
# A virtualenv of its own, so `make test` never needs the peers. BENCH_ARGS=--quick: smoke run.
BENCH_VENV  := benchmarks/_out/venv
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_ARGS  ?=
# e.g. SPOOL_BENCH_ARGS=--quick for a smoke run of the spool benchmark
SPOOL_BENCH_ARGS ?=

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip uninstall --quiet --yes tracing 2>/dev/null || true
	$(BENCH_VENV)/bin/pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) postgresql wrk
	$(BENCH_VENV)/bin/python -m benchmarks.run $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python -m benchmarks.outage --append benchmarks/RESULTS.md
	$(BENCH_VENV)/bin/python -m benchmarks.llm_overhead --append benchmarks/RESULTS.md
	$(BENCH_VENV)/bin/python -m benchmarks.bench_encode --append benchmarks/RESULTS.md
	$(BENCH_VENV)/bin/python -m benchmarks.spool --append benchmarks/RESULTS.md $(SPOOL_BENCH_ARGS)
	$(BENCH_VENV)/bin/python -m benchmarks.collector_ingest $(BENCH_ARGS) --append benchmarks/RESULTS.md
	$(BENCH_VENV)/bin/python -m benchmarks.service.run $(BENCH_ARGS)

# `make bench-service`: the FastAPI service under wrk (benchmarks/service/), on its own.
bench-service: $(BENCH_STAMP) wrk
	$(BENCH_VENV)/bin/python -m benchmarks.service.run $(BENCH_ARGS)

.PHONY: wrk
wrk:
	@command -v wrk >/dev/null || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  $$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq wrk; }

# `make test-llm-oldest`: the LLM client tests against the oldest openai and anthropic
# releases pyproject declares (its own virtualenv); `make test` uses the newest.
OLDEST_VENV  := .venv-llm-oldest
OLDEST_PINS  := openai==1.66.0 anthropic==0.49.0
OLDEST_STAMP := $(OLDEST_VENV)/.installed

$(OLDEST_STAMP): pyproject.toml
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/pip install --quiet -e '.[dev]' $(OLDEST_PINS)
	touch $(OLDEST_STAMP)

test-llm-oldest: $(OLDEST_STAMP)
	$(OLDEST_VENV)/bin/pytest tests/llm tests/collector/test_llm_usage.py

# `make mutate`: mutation testing of the SDK core with mutmut ([tool.mutmut] in
# pyproject.toml), in a virtualenv of its own, niced, one worker by default (the machine is
# shared): MUTATE_ARGS="--max-children 2" for more. Slow (about an hour); prints the killed
# share per module at the end. Equivalent survivors are listed in tests/MUTANTS.md.
MUT_VENV    := .mutate/venv
MUT_STAMP   := $(MUT_VENV)/.installed
MUTATE_ARGS ?= --max-children 1

$(MUT_STAMP): pyproject.toml
	$(PYTHON) -m venv $(MUT_VENV)
	$(MUT_VENV)/bin/pip install --quiet --upgrade pip
	$(MUT_VENV)/bin/pip install --quiet -e '.[dev]' 'mutmut==3.8.1'
	touch $(MUT_STAMP)

mutate: $(MUT_STAMP)
	rm -rf mutants/tests mutants/examples  # mutmut copies tests over, never removes a stale one
	nice -n 10 $(MUT_VENV)/bin/mutmut run $(MUTATE_ARGS)
	$(MUT_VENV)/bin/python -m tests._mutation_table

clean:
	rm -rf $(VENV) $(OLDEST_VENV) $(MUT_VENV) mutants .mypy_cache .pytest_cache .ruff_cache .ci-out
