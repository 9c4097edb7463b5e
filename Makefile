# catdog: set-up, tests, demo and the bundled model. Each target creates the virtual
# environment it needs (.venv/, ignored by git) on a machine that has only Python >= 3.10.

PYTHON ?= python3
VENV   ?= .venv
DATA   ?= ../shared/datasets/catdog
# Photos with no cat and no dog: make model measures how many the default model answers "none" (never to choose).
NOTHING ?= $(DATA)/../nothing/photos
BIN    := $(VENV)/bin
DEMO   := demo-out
# Two more environments prove the edge runs without TensorFlow, both installed from the wheel: edge-only ([edge],
# ai-edge-litert) and legacy (tflite-runtime 2.14 with numpy < 2, as on older Raspberry Pi OS;
# tflite-runtime has wheels for Python 3.8-3.11 only).
EDGE_VENV   ?= .venv-edge
LEGACY_VENV ?= .venv-legacy
LEGACY_PYTHON ?= $(shell command -v python3.11 || echo $(PYTHON))
DATA_ABS := $(abspath $(DATA))
# MediaPipe Tasks, the standard TFLite metadata's reader that tests/mediapipe runs on catdog's models: its
# own environment, as its opencv-contrib-python clashes with the main one's opencv-python-headless.
MEDIAPIPE_VENV ?= .venv-mediapipe
MEDIAPIPE_SPEC ?= mediapipe==1.2.3
# The wheel: built once from this checkout; the edge-only and legacy environments install it.
DIST    ?= dist
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
WHEEL   := $(DIST)/catdog_toolkit-$(VERSION)-py3-none-any.whl
PACKAGE_FILES := $(shell find edge trainer -name '*.py') $(wildcard models/catdog*.tflite models/catdog*.json)

.PHONY: install wheel test compact-model fuzz test-main test-edge test-legacy test-mediapipe test-pi demo demo-compact demo-data model seed-model benchmarks clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "catdog needs Python >= 3.10; run make PYTHON=python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[train,edge,camera,dev,pretrained]'
	@touch $@

## make wheel: the one wheel both device environments install (and a Pi user copies over)
wheel: $(WHEEL)

$(WHEEL): pyproject.toml README.md $(PACKAGE_FILES) | install
	rm -rf build $(DIST)/catdog_toolkit-*.whl
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir $(DIST) .
	@test -f $@ || (echo "pip wheel did not write $@"; exit 1)

$(EDGE_VENV)/.installed: $(WHEEL)
	rm -rf $(EDGE_VENV)
	$(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/pip install --quiet --upgrade pip
	$(EDGE_VENV)/bin/pip install --quiet '$(abspath $(WHEEL))[edge,camera,dev]'
	@! $(EDGE_VENV)/bin/python -c 'import tensorflow' 2>/dev/null || (echo "TensorFlow leaked into $(EDGE_VENV)"; exit 1)
	@touch $@

$(LEGACY_VENV)/.installed: $(WHEEL)
	rm -rf $(LEGACY_VENV)
	$(LEGACY_PYTHON) -m venv $(LEGACY_VENV)
	$(LEGACY_VENV)/bin/pip install --quiet --upgrade pip
	$(LEGACY_VENV)/bin/pip install --quiet 'numpy<2' 'tflite-runtime==2.14.*' pillow 'click>=8.4' pytest 'hypothesis>=6.100'
	$(LEGACY_VENV)/bin/pip install --quiet --no-deps '$(abspath $(WHEEL))'
	@touch $@

## make test: the whole suite in the full environment, then the edge tests in the edge-only and
## legacy environments (photos from $(DATA); CI=true makes their absence a failure), then the emulated
## Raspberry Pis (make test-pi) when this machine can emulate (root, Debian's qemu-user-static
## binfmt-support mmdebstrap zstd; CI=true makes their absence a failure, elsewhere one line says why
## they were skipped). The Pis' missing root filesystems are built in the background while the native
## suites run (python3 -m pi prepare, at the lowest CPU priority: the suites come first), so a cold machine's
## builds overlap them.
test:
	@nice -n 19 $(PYTHON) -m pi prepare & prepare=$$!; \
	$(MAKE) --no-print-directory test-main test-edge test-legacy test-mediapipe; status=$$?; \
	wait $$prepare; exit $$status
	@if reason="$$($(PYTHON) -m pi check)"; then $(MAKE) --no-print-directory test-pi; \
	elif [ "$$CI" = "true" ]; then echo "make test: the emulated Raspberry Pis must run under CI=true, but $$reason"; exit 1; \
	else echo "make test: skipped the emulated Raspberry Pis (make test-pi): $$reason"; fi

test-main: install $(LEGACY_VENV)/.installed
	CATDOG_DATA=$(DATA_ABS) CATDOG_LEGACY_EDGE=$(abspath $(LEGACY_VENV))/bin/catdog-edge $(BIN)/python -m pytest --ignore=tests/mediapipe

# CATDOG_INSTALLED=1: these runs must import the installed wheel, never the checkout (tests/edge/test_install.py).
test-edge: $(EDGE_VENV)/.installed $(LEGACY_VENV)/.installed
	CATDOG_INSTALLED=1 CATDOG_DATA=$(DATA_ABS) CATDOG_LEGACY_EDGE=$(abspath $(LEGACY_VENV))/bin/catdog-edge $(EDGE_VENV)/bin/python -m pytest tests/edge -p no:cacheprovider

test-legacy: $(LEGACY_VENV)/.installed
	CATDOG_INSTALLED=1 CATDOG_DATA=$(DATA_ABS) $(LEGACY_VENV)/bin/python -m pytest tests/edge -p no:cacheprovider

## make test-mediapipe: MediaPipe Tasks' ImageClassifier (in $(MEDIAPIPE_VENV)) on the bundled models and a
## three-class model fitted here: it names the classes from the standard metadata and answers as catdog-edge does.
## Where PyPI has no $(MEDIAPIPE_SPEC) wheel for this platform, the environment says so and the tests skip.
test-mediapipe: install $(MEDIAPIPE_VENV)/.installed
	CATDOG_DATA=$(DATA_ABS) CATDOG_MEDIAPIPE=$(abspath $(MEDIAPIPE_VENV)) $(BIN)/python -m pytest tests/mediapipe

$(MEDIAPIPE_VENV)/.installed:
	rm -rf $(MEDIAPIPE_VENV)
	$(PYTHON) -m venv $(MEDIAPIPE_VENV)
	$(MEDIAPIPE_VENV)/bin/pip install --quiet --upgrade pip
	@if $(MEDIAPIPE_VENV)/bin/pip download --quiet --no-deps --only-binary=:all: --dest $(MEDIAPIPE_VENV)/wheel '$(MEDIAPIPE_SPEC)' \
	    > $(MEDIAPIPE_VENV)/download.log 2>&1; then \
	  $(MEDIAPIPE_VENV)/bin/pip install --quiet $(MEDIAPIPE_VENV)/wheel/*.whl; \
	elif grep -q "No matching distribution" $(MEDIAPIPE_VENV)/download.log; then \
	  echo "PyPI has no $(MEDIAPIPE_SPEC) wheel for $$($(MEDIAPIPE_VENV)/bin/python -c 'import platform, sys; print(platform.machine(), "Python", sys.version.split()[0])')" \
	    | tee $(MEDIAPIPE_VENV)/NO_WHEEL; \
	else cat $(MEDIAPIPE_VENV)/download.log; exit 1; fi
	@touch $@

## make test-pi: tests/edge and classify PI_PHOTOS val/ photos (compared with x86) on emulated Raspberry
## Pis: Pi 4 bookworm arm64 (ai-edge-litert; tflite-runtime), Pi 5 trixie arm64, 32-bit armhf (pi/, docs/pi.md).
## Needs root and Debian's qemu-user-static binfmt-support mmdebstrap; root filesystems and wheels are
## cached under ~/.cache/catdog (rm -rf ~/.cache/catdog/pi-rootfs to rebuild), logs in pi/out/.
## Each environment runs its own selection of tests/edge (pi/targets.py); PI_TESTS=tests/edge runs all of it
## (less the native-only modules) in every environment, PI_TESTS=tests/edge/test_learn.py one module.
PI_PHOTOS ?= 200
PI_JOBS   ?= 2
PI_TESTS  ?=
test-pi: $(WHEEL) $(EDGE_VENV)/.installed $(LEGACY_VENV)/.installed
	$(PYTHON) -m pi run --wheel $(WHEEL) --data $(DATA_ABS) --photos $(PI_PHOTOS) --jobs $(PI_JOBS) --tests '$(PI_TESTS)' \
	  --x86-litert $(abspath $(EDGE_VENV))/bin/catdog-edge --x86-tflite $(abspath $(LEGACY_VENV))/bin/catdog-edge

## make demo: the recommended path once, small: the pretrained EfficientNet-Lite0 with a new head fitted
## on DEMO_PER_CLASS photos per class -> export --quantize (int8, calibrated on 100 of them, with its parity
## check against the Keras model) -> classify; 40 s on an idle 2-core machine once installed, with every cache
## empty (XDG_CACHE_HOME; 2026-12-07). It ends with the int8
## model's accuracy on the validation photos, read from the contract export wrote.
## make demo-compact: the small model trained from scratch instead (5 short epochs: rough answers).
DEMO_PER_CLASS ?= 150
DEMO_PHOTOS = $(DATA)/val/cat/cat.4001.jpg $(DATA)/val/cat/cat.4002.jpg $(DATA)/val/dog/dog.4001.jpg $(DATA)/val/dog/dog.4002.jpg
# The measured accuracy of an exported model (argument: its contract).
DEMO_ACCURACY = $(BIN)/python -c 'import json, sys; m = json.load(open(sys.argv[1]))["metrics"]; \
  print("--- %s: %.1f%% right on the %d validation photos (int8) ---" % (sys.argv[1], 100 * m["tflite_val_accuracy"], m["val_photos"]))'

demo: install demo-data
	$(BIN)/catdog-train fit $(DATA)/train --val $(DATA)/val --arch efficientnet-lite0 --limit-per-class $(DEMO_PER_CLASS) --overwrite --out $(DEMO)/demo.keras
	$(BIN)/catdog-train export $(DEMO)/demo.keras --quantize --calibration-count 100 --data-root $(DATA)
	$(BIN)/catdog-edge classify --model $(DEMO)/demo.tflite $(DEMO_PHOTOS)
	@$(DEMO_ACCURACY) $(DEMO)/demo.json

demo-compact: install demo-data
	$(BIN)/catdog-train fit $(DATA)/train --val $(DATA)/val --limit-per-class 300 --epochs 5 --batch-size 16 --image-size 96 --overwrite --out $(DEMO)/compact.keras
	$(BIN)/catdog-train export $(DEMO)/compact.keras --quantize --data-root $(DATA)
	$(BIN)/catdog-edge classify --model $(DEMO)/compact.tflite $(DEMO_PHOTOS)
	@$(DEMO_ACCURACY) $(DEMO)/compact.json
	@echo "(5 short epochs from scratch on 600 photos: expect rough answers; make demo shows the pretrained path)"

demo-data:
	@if [ ! -d "$(DATA)/train" ] || [ ! -d "$(DATA)/val" ]; then \
	  echo "No photos at $(DATA). Point DATA at a folder laid out as DATA/train/<label>/*.jpg and"; \
	  echo "DATA/val/<label>/*.jpg (e.g. cat/ and dog/; the Kaggle 'Dogs vs. Cats' photos work):"; \
	  echo "  make demo DATA=/path/to/catdog"; \
	  exit 1; \
	fi

## make model: the default bundled model (models/catdog.*): EfficientNet-Lite0 with ImageNet weights
## and a new head fitted on its frozen features (head chosen by cross-validation on train/; val/ only
## measures it), exported to int8 and evaluated (on val/, and on NOTHING: how many photos of empty scenes it
## answers "none"; the figures are recorded in the contract)
model: install
	$(BIN)/catdog-train fit $(DATA)/train --val $(DATA)/val --arch efficientnet-lite0 --out models/catdog.keras --overwrite
	$(BIN)/catdog-train export models/catdog.keras --quantize --data-root $(DATA)
	$(BIN)/catdog-train evaluate models/catdog.tflite --data $(DATA)/val --plots models/ --negatives $(NOTHING) --record

## make compact-model: the small from-scratch model (models/catdog-compact.*, --model compact) for
## Pi Zero-class devices. The fit defaults are the recipe; --keep last: val/ is measured, never used
## to choose an epoch.
compact-model: install
	$(BIN)/catdog-train fit $(DATA)/train --val $(DATA)/val --keep last --out models/catdog-compact.keras --overwrite
	$(BIN)/catdog-train export models/catdog-compact.keras --quantize --data-root $(DATA)
	$(BIN)/catdog-train evaluate models/catdog-compact.tflite --data $(DATA)/val --plots models/

## make seed-model: the seed article's CNN (32.5M parameters at 128x128), the baseline of
## benchmarks/accuracy_table.py; into runs/seed/ (ignored by git: 130 MB as Keras float)
seed-model: runs/seed/seed.keras

runs/seed/seed.keras: | install
	$(BIN)/catdog-train fit $(DATA)/train --val $(DATA)/val --arch seed --image-size 128 --epochs 10 --no-augment --lr 1e-3 --keep last --out $@

## make benchmarks: every table in the README's Benchmarks section (trains the seed baseline first if needed)
benchmarks: install $(EDGE_VENV)/.installed $(LEGACY_VENV)/.installed $(MEDIAPIPE_VENV)/.installed runs/seed/seed.keras
	$(BIN)/python benchmarks/accuracy_table.py --model models/catdog.keras --model models/catdog-compact.keras --model runs/seed/seed.keras
	$(BIN)/python benchmarks/transfer_sizes.py
	$(BIN)/python benchmarks/few_shot.py
	$(BIN)/python benchmarks/train_step.py
	$(BIN)/python benchmarks/edge_throughput.py
	$(BIN)/python benchmarks/cold_start.py --runs 9
	$(EDGE_VENV)/bin/python benchmarks/flip_tta.py
	$(BIN)/python benchmarks/centre_crop.py
	$(BIN)/python benchmarks/camera_soak.py
	$(BIN)/python benchmarks/install_footprint.py
	$(BIN)/python benchmarks/mediapipe_agreement.py --mediapipe $(MEDIAPIPE_VENV)
	$(BIN)/python benchmarks/none_there.py
	$(BIN)/python benchmarks/none_calibration.py
	$(BIN)/python benchmarks/none_classes.py
	$(BIN)/python benchmarks/learn.py

## make fuzz: a coverage-guided campaign (atheris) of every harness in fuzz/, FUZZ_SECONDS each;
## corpora grow under fuzz/corpus/<harness>/ (only seed-* files are committed), logs in fuzz/logs/;
## a harness's libFuzzer dictionary, if any, is fuzz/<harness>.dict (fuzz_http.dict: HTTP's words)
FUZZ_SECONDS ?= 600
fuzz: install
	$(BIN)/pip install --quiet -e '.[train,edge,camera,dev,pretrained,fuzz]'
	@mkdir -p fuzz/logs
	@for harness in fuzz/fuzz_*.py; do \
	  name=$$(basename $$harness .py); mkdir -p fuzz/corpus/$$name; \
	  echo "--- $$name: $(FUZZ_SECONDS) s"; \
	  dict=; if [ -f fuzz/$$name.dict ]; then dict=-dict=fuzz/$$name.dict; fi; \
	  CATDOG_DATA=$(DATA_ABS) $(BIN)/python $$harness fuzz/corpus/$$name $$dict -max_total_time=$(FUZZ_SECONDS) \
	    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1 | tee fuzz/logs/$$name.log | tail -15; \
	done

clean:
	rm -rf $(VENV) $(EDGE_VENV) $(LEGACY_VENV) $(MEDIAPIPE_VENV) $(DEMO) runs .pytest_cache build $(DIST)
