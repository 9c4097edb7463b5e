# catdog: set-up, tests, demo and the bundled model. Each target creates the virtual
# environment it needs (.venv/, ignored by git) on a machine that has only Python >= 3.10.

PYTHON ?= python3
VENV   ?= .venv
DATA   ?= ../shared/datasets/catdog
BIN    := $(VENV)/bin
DEMO   := demo-out

.PHONY: install test demo model clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "catdog needs Python >= 3.10; run make PYTHON=python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[train,edge,dev]'
	@touch $@

## make test: the whole test suite (reads the photos in $(DATA); CI=true makes their absence a failure)
test: install
	CATDOG_DATA=$(abspath $(DATA)) $(BIN)/python -m pytest

## make demo: the whole pipeline once, small: fit -> export --quantize -> parity -> classify
demo: install
	@if [ ! -d "$(DATA)/train" ] || [ ! -d "$(DATA)/val" ]; then \
	  echo "No photos at $(DATA). Point DATA at a folder laid out as DATA/train/<label>/*.jpg and"; \
	  echo "DATA/val/<label>/*.jpg (e.g. cat/ and dog/; the Kaggle 'Dogs vs. Cats' photos work):"; \
	  echo "  make demo DATA=/path/to/catdog"; \
	  exit 1; \
	fi
	$(BIN)/catdog-train fit $(DATA)/train --val $(DATA)/val --limit-per-class 150 --epochs 3 --out $(DEMO)/demo.keras
	$(BIN)/catdog-train export $(DEMO)/demo.keras --quantize
	$(BIN)/catdog-train parity $(DEMO)/demo.keras $(DEMO)/demo.tflite --data $(DATA)/val --limit-per-class 100 --min-agreement 0
	@echo "--- the demo model (3 short epochs on 300 photos) ---"
	$(BIN)/catdog-edge classify --model $(DEMO)/demo.tflite $(DATA)/val/cat/cat.4001.jpg $(DATA)/val/cat/cat.4002.jpg $(DATA)/val/dog/dog.4001.jpg $(DATA)/val/dog/dog.4002.jpg
	@echo "--- the bundled model (models/catdog.tflite) ---"
	$(BIN)/catdog-edge classify $(DATA)/val/cat/cat.4001.jpg $(DATA)/val/cat/cat.4002.jpg $(DATA)/val/dog/dog.4001.jpg $(DATA)/val/dog/dog.4002.jpg

## make model: retrain the bundled model from scratch and export it (models/catdog.*)
model: install
	$(BIN)/catdog-train fit $(DATA)/train --val $(DATA)/val --out models/catdog.keras
	$(BIN)/catdog-train export models/catdog.keras --quantize
	$(BIN)/catdog-train evaluate models/catdog.tflite --data $(DATA)/val

clean:
	rm -rf $(VENV) $(DEMO) runs .pytest_cache
