# `make train` / `make test` set up .venv on first use, from the pinned versions CI tested.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := requirements.lock

.PHONY: setup train test test-full lint clean lock results bench

setup: $(VENV)/.installed

# torch is pinned to its CPU build in the lock file, so pip never pulls the CUDA wheels.
$(VENV)/.installed: pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $@

train: setup
	$(PY) train.py $(ARGS)

TEST_ENV := HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 WANDB_MODE=offline

# The fast tier (~2 min on 2 cores): everything but the tests marked `full`.
test: setup
	$(TEST_ENV) $(PY) -m pytest -m "not full" $(ARGS)

# Both tiers (~6 min): adds subprocess sweeps, launchers, notebooks, DDP, kill/resume.
# ARGS="-m full" runs the slow tier alone (as CI does after `make test`).
test-full: setup
	$(TEST_ENV) $(PY) -m pytest $(ARGS)

lint: setup
	$(PY) -m ruff check .

# Re-pin after changing dependencies in pyproject.toml (then run `make test`).
lock: setup
	$(PY) -m pip freeze --exclude-editable | grep -v '^trainlab' > $(LOCK)

clean:
	rm -rf $(VENV) outputs .pytest_cache

# Runs every shipped experiment with its replicates (about 20 minutes on 2 cores) and rewrites README's Results section.
results: setup
	$(PY) scripts/results.py $(ARGS)

# Benchmarks, not tests: each script prints its baseline, trainlab and `ratio <target> <value>` lines,
# all measured in the same run (about 6 minutes on 2 cores). Results: bench/README.md.
bench: setup
	$(PY) bench/speed.py
	$(PY) bench/startup.py
	$(PY) bench/sweep.py
	$(PY) bench/text_bow.py
	$(PY) bench/fault_injection.py
