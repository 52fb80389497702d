# Developer shortcuts; each target sets itself up (see .ci/setup).
.PHONY: setup example test lint format schema docs gallery bench clean

setup:
	bash .ci/setup

example:
	bash .ci/example

test:
	bash .ci/test

lint: setup
	bash .ci/lint

format: setup
	.venv/bin/ruff format compiler tests bench
	.venv/bin/ruff check --fix compiler tests bench

# Regenerate the committed JSON Schema from the layer and merge registries.
schema: setup
	.venv/bin/fusec schema > schemas/fusec.schema.json

# Regenerate docs/vocabulary.md from the registries.
docs: setup
	.venv/bin/python -m fusec.docgen > docs/vocabulary.md

# Regenerate docs/gallery.md and its diagrams from every spec in specs/.
gallery: setup
	.venv/bin/python bench/make_gallery.py

# Side-by-side benchmarks (see docs/benchmarks.md).
bench: setup
	.venv/bin/python bench/run_all.py

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
