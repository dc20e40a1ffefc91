# `make demo` and `make test` each build the virtual environment they need on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Test data that cannot be made here, fetched once by the install step (never by a test).
TEST_DATA := tests/data/tid2013

.PHONY: demo test bench clean

# The environment takes about 6 GB (torch's CUDA build); a full disk would otherwise show up as
# a pip OSError halfway through the install.
NEED_GB := 7

$(STAMP): pyproject.toml
	@free=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); \
	if [ "$$free" -lt $(NEED_GB) ]; then \
		echo "error: installing needs about $(NEED_GB) GB of free disk space here; $$free GB is free" >&2; exit 1; fi
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Restores the bundled sample night photos with the bundled default model into results/, and
# writes results/side_by_side.jpg (night | restored | ground truth). Re-running replaces them.
demo: $(STAMP)
	$(VENV)/bin/vqcnir restore samples/night -o results --overwrite \
		--side-by-side results/side_by_side.jpg --gt samples/gt

$(TEST_DATA)/.fetched: scripts/fetch_test_data.py | $(STAMP)
	$(PY) scripts/fetch_test_data.py $(TEST_DATA)
	touch $@

test: $(STAMP) $(TEST_DATA)/.fetched
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/restore_speed.py

clean:
	rm -rf $(VENV) results .pytest_cache tests/data
