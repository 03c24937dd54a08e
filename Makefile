# Thin on purpose: bootstrap .venv, then hand over to the workshop CLI, pytest or mkdocs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Re-installs when pyproject.toml changes or the venv is missing or broken.
STAMP  := $(VENV)/.installed
# The test suite's extra (Playwright), on top of what a learner installs.
TEST_STAMP := $(VENV)/.installed-test

.PHONY: check test docs bench clean chromium

check: $(STAMP) ## Grade your labs and show your progress
	@# Unfinished tasks (exit 1) are the normal state of a workshop, not a failure of make; errors (2+) are.
	@$(BIN)/workshop check; status=$$?; [ $$status -le 1 ]

test: $(TEST_STAMP) chromium ## The project's whole test suite (graders against solutions, integrity, templates, docs, notebooks, the site in a browser)
	@# -rs prints why anything was skipped (the browser test, on a machine without Chromium).
	$(BIN)/python -m pytest $(wildcard tests/test_*.py) tests/meta --target=solutions --timeout=300 -rs

docs: $(STAMP) ## Serve the workshop site on http://127.0.0.1:8000
	@# The hints and the labs table come from labs/labs.toml: bring them up to date first.
	@$(BIN)/python -m workshop.docs_snippets --write
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

bench: $(STAMP) ## Print the performance figures and write them to docs/snippets/bench.md for the site
	$(BIN)/workshop bench --write

clean: ## Remove the virtual environment and build output
	rm -rf $(VENV) site

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed; found " + sys.version.split()[0] if sys.version_info < (3, 11) else 0)'
	@$(BIN)/python -c '' 2>/dev/null || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	@echo "Installing the workshop into $(VENV) (first run only, a few minutes; log: $(VENV)/install.log)..."
	@{ $(BIN)/python -m pip install --disable-pip-version-check --upgrade pip \
	   && $(BIN)/python -m pip install --disable-pip-version-check -e . ; } > $(VENV)/install.log 2>&1 \
	   || { tail -n 40 $(VENV)/install.log; echo "Installation failed: see $(VENV)/install.log"; exit 1; }
	@touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	@echo "Installing the test suite's extras into $(VENV) (first run only; log: $(VENV)/install.log)..."
	@$(BIN)/python -m pip install --disable-pip-version-check -e '.[test]' >> $(VENV)/install.log 2>&1 \
	   || { tail -n 40 $(VENV)/install.log; echo "Installation failed: see $(VENV)/install.log"; exit 1; }
	@touch $(TEST_STAMP)

# The site's browser test drives Debian's Chromium. Where it can be installed (root with apt-get, as in
# CI), it is; elsewhere the test is skipped with a notice, and `sudo apt install chromium` enables it.
chromium:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1 || { \
	   echo "Installing Debian's chromium for the site's browser test (once; log: $(VENV)/chromium.log)..."; \
	   { apt-get install -y --no-install-recommends chromium || { apt-get update && apt-get install -y --no-install-recommends chromium; }; } \
	     > $(VENV)/chromium.log 2>&1 || { tail -n 20 $(VENV)/chromium.log; echo "Installing chromium failed: see $(VENV)/chromium.log"; exit 1; }; }
