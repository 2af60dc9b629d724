# Two entry points, both self-contained on a fresh machine (see README).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# llama-cpp-python compiles llama.cpp with -march=native. These VMs advertise AMX but fault
# on its instructions (SIGILL in the first matrix multiply), so the build leaves AMX out.
ifeq ($(shell uname -m),x86_64)
LLAMA_BUILD_FLAGS := CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" CXXFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
endif

.PHONY: example test lint bench docs browser

$(BIN)/ax: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(LLAMA_BUILD_FLAGS) $(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/ax

example: $(BIN)/ax
	$(BIN)/ax workflow validate examples/code-review.yaml
	$(BIN)/ax workflow run examples/code-review.yaml \
	  --context-file code=src/automatosx/definition/graph.py \
	  --context '{"filePath": "src/automatosx/definition/graph.py"}'

lint: $(BIN)/ax
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# Two test processes (pytest-xdist): most tests wait on subprocesses, servers and
# PostgreSQL, so two share these 2 cores well (13.5 -> 7.4 minutes). Not `-n auto`: each
# worker test opens a dozen PostgreSQL connections, and many processes would exhaust the
# server's 100; every test keeps its own files, schema and ports, so the split is safe.
test: lint browser
	$(BIN)/pytest -q -n 2 --dist worksteal

# The dashboard's browser tests drive Debian's chromium (Playwright's own download cannot
# work here); CI runs as root, so it installs the package when it is missing.
browser:
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

bench: $(BIN)/ax
	$(BIN)/python benchmarks/run.py

# The Python API's reference, generated from its docstrings (pdoc), as HTML under build/
# (git-ignored); docs/python-api.md is the guide, with examples the tests run.
docs: $(BIN)/ax
	rm -rf build/api-reference
	$(BIN)/pdoc --docformat markdown -o build/api-reference automatosx.api
	@echo "API reference: build/api-reference/index.html"
