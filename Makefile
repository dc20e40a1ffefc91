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

# Restores the bundled sample night photos with the bundled default model into results/, and
# writes results/side_by_side.jpg (night | restored | ground truth). Re-running replaces them.
demo: $(STAMP)
	$(VENV)/bin/vqcnir restore samples/night -o results --overwrite \
		--side-by-side results/side_by_side.jpg --gt samples/gt

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/restore_speed.py

clean:
	rm -rf $(VENV) results .pytest_cache
