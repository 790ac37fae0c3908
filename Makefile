# zoo: `make demo` and `make test` do all the set-up on a fresh machine.
# torch/torchvision are pinned and installed with plain pip (they come from the machine's local
# package store; uv/poetry would download gigabytes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint format docs bench clean

install: $(STAMP)

# Re-installs only when the project's metadata changes: a second `make install` is a quick no-op.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/zoo build specs/resnet34.yaml --trace

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmarks: writes benchmarks/report.md and benchmarks/report.json (about 10 minutes on 2 cores).
bench: install
	$(BIN)/python benchmarks/run.py

# Regenerate the references derived from the pydantic models (tests fail when they drift).
docs: install
	$(BIN)/zoo schema > schemas/zoo-spec.schema.json
	$(BIN)/python -c "from zoo.train.recipe import recipe_schema_text as t; print(t(), end='')" > schemas/zoo-recipe.schema.json
	$(BIN)/python -c "from zoo.reference import markdown_reference as m; print(m(), end='')" > docs/spec-format.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
