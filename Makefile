# `make demo` and `make test` each build the virtual environment they need on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Restores the bundled sample night photos into results/. No trained model ships with vqcnir
# yet, so point WEIGHTS at a checkpoint (the authors' VQCNIR_LOLBlur_G.pth or one of yours).
demo: $(STAMP)
ifeq ($(WEIGHTS),)
	@echo "No trained model is bundled with vqcnir yet, so there is nothing to restore the samples with."
	@echo "Run: make demo WEIGHTS=path/to/VQCNIR_LOLBlur_G.pth   (or a stage-2 checkpoint from 'vqcnir train')"
else
	$(VENV)/bin/vqcnir restore samples/night -o results --weights $(WEIGHTS)
endif

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/restore_speed.py

clean:
	rm -rf $(VENV) results .pytest_cache
