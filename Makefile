# Thin on purpose: bootstrap .venv, then hand over to the workshop CLI, pytest or mkdocs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The exact versions `make test` last passed with (`make upgrade` refreshes them). `make test LOCK=`
# installs the newest versions pyproject.toml allows instead: the weekly CI run does, to meet upstream
# breakage before learners do.
LOCK   ?= constraints.txt
# uv installs in seconds what pip takes a minute for; it comes from PyPI, at this version.
UV_VERSION := 0.13.9
UV     := $(BIN)/uv
# Re-installs when pyproject.toml or the lock changes, or the venv is missing or broken.
STAMP  := $(VENV)/.installed
# The test suite's extra (Playwright), on top of what a learner installs.
TEST_STAMP := $(VENV)/.installed-test
# The real AWS SAM CLI, in a virtual environment of its own: it pins its own boto3.
SAM_VENV := .venv-sam
# The project's own modules, compiled ahead (see $(BYTECODE)'s rule); labs/ is the learner's to edit.
OWN_SOURCES := $(shell find workshop tests solutions -name '*.py' -not -path '*/.*')
BYTECODE := $(VENV)/.compiled

.PHONY: check test docs bench mutants upgrade sam-validate clean chromium

check: $(STAMP) $(BYTECODE) ## Grade your labs and show your progress
	@# Unfinished tasks (exit 1) are the normal state of a workshop, not a failure of make; errors (2+) are.
	@$(BIN)/workshop check; status=$$?; [ $$status -le 1 ]

test: $(TEST_STAMP) chromium $(BYTECODE) ## The project's whole test suite (graders against solutions, integrity, templates, docs, notebooks, the site in a browser)
	@# -rs prints why anything was skipped (the browser test, on a machine without Chromium). pytest-xdist
	@# hands whole files to one worker per core (at most 4: many tests start gradings of their own), in
	@# collection order, where tests/meta/conftest.py puts the longest first (xdist's own order, most
	@# tests first, left test_bench to run alone at the end while the other worker idled).
	$(BIN)/python -m pytest $(wildcard tests/test_*.py) tests/meta --target=solutions --timeout=300 -rs \
	  --numprocesses=auto --maxprocesses=4 --dist=loadfile --no-loadscope-reorder

docs: $(STAMP) ## Serve the workshop site on http://127.0.0.1:8000
	@# The hints and the labs table come from labs/labs.toml: bring them up to date first.
	@$(BIN)/python -m workshop.docs_snippets --write
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

bench: $(STAMP) $(BYTECODE) ## Print the performance figures and write them to docs/snippets/bench.md for the site
	$(BIN)/workshop bench --write

mutants: $(STAMP) $(BYTECODE) ## The mutation gate: how many small wrong changes to the solutions the graders catch, per lab (several minutes)
	$(BIN)/python -m workshop.mutants

clean: ## Remove the virtual environments and build output
	rm -rf $(VENV) $(SAM_VENV) site

# Installs into .venv with uv, pinned to the lock: the learner gets the versions the suite passed with.
# --compile-bytecode, as pip does by default: without it every fresh process compiles boto3, moto and
# pytest from source wherever Python may not write bytecode itself (PYTHONDONTWRITEBYTECODE, a read-only
# venv), and the import floor of every `workshop` command triples (measured 1.2-1.5 s against 0.37 s).
INSTALL = $(UV) pip install --compile-bytecode --python $(BIN)/python $(if $(LOCK),--constraint $(LOCK))

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed; found " + sys.version.split()[0] if sys.version_info < (3, 11) else 0)'
	@$(BIN)/python -c '' 2>/dev/null || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	@echo "Installing the workshop into $(VENV) (first run only, about a minute; log: $(VENV)/install.log)..."
	@{ { $(UV) --version 2>/dev/null | grep -qx 'uv $(UV_VERSION)' \
	     || $(BIN)/python -m pip install --disable-pip-version-check --quiet 'uv==$(UV_VERSION)'; } \
	   && $(INSTALL) -e . ; } > $(VENV)/install.log 2>&1 \
	   || { tail -n 40 $(VENV)/install.log; echo "Installation failed: see $(VENV)/install.log"; exit 1; }
	@touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	@echo "Installing the test suite's extras into $(VENV) (first run only; log: $(VENV)/install.log)..."
	@$(INSTALL) -e '.[test]' >> $(VENV)/install.log 2>&1 \
	   || { tail -n 40 $(VENV)/install.log; echo "Installation failed: see $(VENV)/install.log"; exit 1; }
	@touch $(TEST_STAMP)

# Our own modules' bytecode, as uv compiles the installed packages' (--compile-bytecode): where Python
# may not write it itself (PYTHONDONTWRITEBYTECODE, which many containers set) every `workshop` process
# compiled them again, 60-70 ms of a one-second grading. Redone when one changes. A file that does not
# compile is left to whatever imports it, which says so where it is read.
$(BYTECODE): $(STAMP) $(OWN_SOURCES)
	@$(BIN)/python -m compileall -q workshop tests solutions > /dev/null 2>&1 || true
	@touch $(BYTECODE)

# The newest versions pyproject.toml allows, locked, then the whole suite against them: commit
# constraints.txt only when it passes.
upgrade: $(STAMP) ## Maintainers: refresh constraints.txt to the newest allowed versions and run the suite
	$(UV) pip compile pyproject.toml --extra test --universal --python-version 3.11 --upgrade --quiet \
	  --no-header --output-file constraints.txt
	$(MAKE) test

sam-validate: ## Instructors, optional: validate every reference template with the real AWS SAM CLI (offline)
	@test -x $(SAM_VENV)/bin/sam || { echo "Installing the AWS SAM CLI into $(SAM_VENV) (once)..."; \
	   $(PYTHON) -m venv $(SAM_VENV) && $(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check aws-sam-cli; }
	@for template in template.yaml solutions/*/template.yaml; do \
	   echo "sam validate --lint $$template"; \
	   SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 $(SAM_VENV)/bin/sam validate --lint --template-file $$template || exit 1; \
	 done

# The site's browser test drives Debian's Chromium. Where it can be installed (root with apt-get, as in
# CI), it is; elsewhere the test is skipped with a notice, and `sudo apt install chromium` enables it.
chromium:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1 || { \
	   echo "Installing Debian's chromium for the site's browser test (once; log: $(VENV)/chromium.log)..."; \
	   { apt-get install -y --no-install-recommends chromium || { apt-get update && apt-get install -y --no-install-recommends chromium; }; } \
	     > $(VENV)/chromium.log 2>&1 || { tail -n 20 $(VENV)/chromium.log; echo "Installing chromium failed: see $(VENV)/chromium.log"; exit 1; }; }
