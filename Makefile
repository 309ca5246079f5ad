# desktop_llm: `make run` sets everything up and opens the app on the bundled sample corpus;
# `make test` runs the whole test suite. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test test-fast lint screenshots family-screenshots package package-test clean

$(VENV)/.installed: pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "desktop_llm needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,onnx,jax]"  # onnx: tests/core/test_export.py converts and checks ONNX
	# torch for tests/core/test_backends.py, pinned as ../shared/bench/nanogpt_bench.sh pins it (the CPU build)
	$(PY) -m pip install --quiet "torch==2.13.0"
	touch $@

setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/desktop-llm gui --first-corpus resources/corpora/tinyshakespeare.txt

# Two workers (pytest-xdist) on a 2-core machine: 15 min instead of 20; each test file stays on one
# worker (--dist loadfile), so a module's trained fixtures are made once.
test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -n auto --dist loadfile

# The quick loop: every test but those marked slow (processes spawned, long training).
test-fast: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m "not slow" -n auto --dist loadfile

screenshots: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m desktop_llm.gui.screenshots out/screenshots

# README's pictures of each family's tabs (docs/families/*.png, committed).
family-screenshots: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m desktop_llm.gui.family_screenshots docs/families

# The one-folder app, dist/desktop_llm/ (packaging/README.md): PyInstaller (the `package` extra,
# installed into .venv on first use) builds it for the platform it runs on; about 2 minutes.
package: setup
	$(PY) -c 'import PyInstaller, _pyinstaller_hooks_contrib' 2>/dev/null || $(PY) -m pip install --quiet -e ".[package]"
	$(PY) -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build packaging/desktop_llm.spec

# Runs the built app: a WordPiece tokenizer, 20 training steps, generation, the window's screenshot.
package-test:
	sh packaging/smoke_test.sh dist/desktop_llm out/package/window.png

# ruff (pinned in the dev extra) and the import contracts of pyproject.toml ([tool.importlinter]).
lint: setup
	$(VENV)/bin/ruff check desktop_llm tests
	cd $(CURDIR) && $(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache out build dist
