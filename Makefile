# desktop_llm: `make run` sets everything up and opens the app on the bundled sample corpus;
# `make test` runs the whole test suite. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test bench lint screenshots clean

$(VENV)/.installed: pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "desktop_llm needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,onnx]"  # onnx: tests/core/test_export.py converts and checks ONNX
	touch $@

setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/desktop-llm gui --corpus resources/corpora/tinyshakespeare.txt

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

screenshots: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m desktop_llm.gui.screenshots out/screenshots

lint: setup
	$(VENV)/bin/ruff check desktop_llm tests

clean:
	rm -rf $(VENV) .pytest_cache out
