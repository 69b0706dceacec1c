# `make train` / `make test` set up .venv on first use, from the pinned versions CI tested.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := requirements.lock

.PHONY: setup train test test-full lint docs docs-check mutation clean lock results bench

# Which build of the lock's torch version: cpu (Linux without an NVIDIA GPU: the lock's own build, the one CI
# tests, from PyTorch's CPU index), cuda (Linux with one: PyPI's CUDA build) or macos (PyPI's, with Apple's MPS).
# An existing .venv keeps the build it was made with; a new one gets the machine's guess. `make setup TORCH=cpu`
# (or cuda, macos) chooses; TORCH_INDEX=<url> picks another index for it (e.g. https://download.pytorch.org/whl/cu126).
UNAME ?= $(shell uname -s)
NVIDIA_GPU ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo yes)
NVIDIA_GPU := $(NVIDIA_GPU)
# (a .venv made before the build was recorded has a bare .installed: the lock's cpu build)
INSTALLED_TORCH := $(or $(patsubst $(VENV)/.installed-%,%,$(wildcard $(VENV)/.installed-*)),$(if $(wildcard $(VENV)/.installed),cpu))
TORCH ?= $(or $(INSTALLED_TORCH),$(if $(filter Darwin,$(UNAME)),macos,$(if $(NVIDIA_GPU),cuda,cpu)))
ifeq ($(filter $(TORCH),cpu cuda macos),)
$(error TORCH=$(TORCH) is not a torch build trainlab installs: choose TORCH=cpu, TORCH=cuda or TORCH=macos)
endif
ifneq ($(INSTALLED_TORCH),$(if $(INSTALLED_TORCH),$(TORCH)))
$(error $(VENV) holds the $(INSTALLED_TORCH) build of torch, not TORCH=$(TORCH): run `make clean` first to change it)
endif
TORCH_VERSION := $(shell sed -n 's/^torch==\([^+]*\).*/\1/p' $(LOCK))
TORCH_INDEX_cpu := https://download.pytorch.org/whl/cpu
TORCH_INDEX ?= $(TORCH_INDEX_$(TORCH))
TORCH_REQUIREMENT := torch==$(TORCH_VERSION)$(if $(filter cpu,$(TORCH)),+cpu)

setup: $(VENV)/.installed-$(TORCH)

# torch first, alone (the extra index is asked for torch only), then everything else at the lock's versions.
$(VENV)/.installed-$(TORCH): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing torch $(TORCH_VERSION), $(TORCH) build (make setup TORCH=cpu|cuda|macos chooses another)"
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX),--no-deps --extra-index-url $(TORCH_INDEX)) "$(TORCH_REQUIREMENT)"
	grep -v '^torch==' $(LOCK) > $(VENV)/constraints.txt
	$(PY) -m pip install --quiet -c $(VENV)/constraints.txt -e '.[dev]'
	$(PY) -m pip uninstall --quiet --yes hydra-optuna-sweeper 2>/dev/null || true  # retired: trainlab's own sweeper
	rm -f $(VENV)/.installed* && touch $@

train: setup
	$(PY) train.py $(ARGS)

TEST_ENV := HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 WANDB_MODE=offline

# The fast tier: everything but the tests marked `full` (how long each tier takes: docs/testing.md).
test: setup
	$(TEST_ENV) $(PY) -m pytest -m "not full" $(ARGS)

# Both tiers: adds subprocess sweeps, launchers, notebooks, DDP, kill/resume, the staleness rerun of Results.
# ARGS="-m full" runs the slow tier alone (as CI does after `make test`).
test-full: setup
	$(TEST_ENV) $(PY) -m pytest $(ARGS)

lint: setup
	$(PY) -m ruff check .

# The documentation site (mkdocs-material, mkdocs.yml, docs/): `make docs` serves it at http://127.0.0.1:8000,
# `make docs-check` builds it as CI does, strictly (a broken link or anchor, or a page missing from nav, fails).
DOCS_ENV := NO_MKDOCS_2_WARNING=1
docs: setup
	$(DOCS_ENV) $(PY) -m mkdocs serve

docs-check: setup
	$(DOCS_ENV) $(PY) -m mkdocs build --strict --site-dir site

# Mutation testing (mutmut, configured in pyproject.toml) against the fast tier: it plants small bugs one at a time
# and counts those the tests catch. Not part of CI; results: `mutmut results`. Hours on 2 cores: name modules with
# ARGS='"trainlab.run.build*"'. Each mutant runs the quickest MUTATION_BUDGET_S seconds of the tests that reach it.
# One torch thread per mutant worker: the workers already fill the cores, and each worker's full thread pool on
# top of them made the training tests several times slower (docs/testing.md).
MUTATION_BUDGET_S ?= 20
mutation: setup
	$(PY) -m pip install --quiet mutmut==3.8.1
	$(TEST_ENV) MUTATION_BUDGET_S=$(MUTATION_BUDGET_S) OMP_NUM_THREADS=1 $(PY) -m mutmut run $(ARGS)
	$(PY) -m mutmut export-cicd-stats && cat mutants/mutmut-cicd-stats.json

# Re-pin after changing dependencies in pyproject.toml (then run `make test`).
lock: setup
	$(PY) -m pip freeze --exclude-editable | grep -v '^trainlab' > $(LOCK)

clean:
	rm -rf $(VENV) outputs .pytest_cache mutants

# Runs every shipped experiment with its replicates (the longest target: docs/results.md says how long it took) and
# rewrites docs/results.md (and README's pointer to it);
# `make results ARGS=--check` reruns every setting it reports as completed, briefly, to see that none now fails.
results: setup
	$(PY) scripts/results.py $(ARGS)

# Benchmarks, not tests: each script prints its baseline, trainlab and `ratio <target> <value>` lines,
# all measured in the same run. What each compares, how long it runs, and the results: docs/performance.md.
bench: setup
	$(PY) bench/speed.py --threads 1 --lockstep --repeats 3 --epochs 8
	$(PY) bench/speed.py --threads 1 --lockstep --repeats 3 --epochs 8 --optim sgd
	$(PY) bench/startup.py
	$(PY) bench/study.py
	$(PY) bench/sweep.py
	$(PY) bench/search_workers.py
	$(PY) bench/mutation_threads.py
	$(PY) bench/text_bow.py
	$(PY) bench/fault_injection.py
