# make run: set everything up and serve the app.  make test: set up and run every test.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
# test processes (pytest-xdist): two on this 2-core machine keep CI under 20 minutes; 0 = one process
TEST_WORKERS ?= 2

.PHONY: run test bench setup data browser postgres clean

$(VENV)/.installed: requirements.txt requirements-test.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "Python 3.11 or newer is needed (found $$($(PYTHON) --version))"; exit 1; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || scripts/apt-install.sh python3-venv
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-test.txt
	touch $@

setup: $(VENV)/.installed data postgres

data: $(VENV)/.installed
	@scripts/install-data.sh $(PY)

# Debian's PostgreSQL for the run store's tests on PostgreSQL (each test session starts its own
# throwaway server; the app itself needs none: SQLite is the default store)
postgres:
	@scripts/apt-install.sh postgresql \
	  || echo "PostgreSQL not installed: the PostgreSQL store tests will be skipped"

# Debian's Chromium for the browser tests (never `playwright install`)
browser:
	@scripts/apt-install.sh chromium chromium-driver \
	  || echo "Chromium not installed: the browser tests will be skipped"

run: setup
	$(VENV)/bin/streamlit run app.py --server.port $(PORT) --server.headless true

test: setup browser
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=20

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .compression .pytest_cache
