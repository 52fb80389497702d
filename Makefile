# Developer shortcuts; each target sets itself up (see .ci/setup).
.PHONY: setup example test test-fast test-deep lint format schema docs gallery screenshots bench bench-hostile editor-check clean

setup:
	bash .ci/setup

example:
	bash .ci/example

test:
	bash .ci/test

# The static suite only: no test that imports TensorFlow or builds a model (under a minute).
test-fast: setup
	.venv/bin/python -m pytest -q -n 2 -m "not slow"

# Deep property run: random accepted specs built, served, saved and reloaded (20x the CI profile).
test-deep: setup
	FUSEC_HYPOTHESIS_SCALE=20 .venv/bin/python -m pytest -q tests/test_properties.py

lint: setup
	bash .ci/lint

format: setup
	.venv/bin/ruff format compiler tests bench tools examples
	.venv/bin/ruff check --fix compiler tests bench tools examples

# Regenerate the committed JSON Schema from the layer and merge registries.
schema: setup
	.venv/bin/fusec schema > compiler/spec/schema/fusec-1.schema.json

# The schema as VS Code's JSON language service reads it (hover, completion, validation of a sample
# spec; docs/editors.md), and the VS Code extension's own tests. Needs node and npm.
editor-check: setup
	npm install --prefix /tmp/fusec-editor-check --no-save --no-audit --no-fund vscode-json-languageservice@5 vscode-languageserver-textdocument@1
	.venv/bin/fusec schema | node tools/json_service_check.mjs - --modules /tmp/fusec-editor-check/node_modules
	node --test editors/vscode/test/

# Regenerate docs/vocabulary.md from the registries.
docs: setup
	.venv/bin/python -m fusec.vocab.docgen > docs/vocabulary.md

# Regenerate docs/gallery.md and its diagrams from every spec in specs/.
gallery: setup
	.venv/bin/python tools/make_gallery.py

# Remake the review page's screenshots in docs/img/ (headless Chromium, as the browser tests use).
screenshots: setup
	.venv/bin/python tools/page_screenshots.py

# Side-by-side benchmarks (see docs/benchmarks.md).
bench: setup
	.venv/bin/python bench/run_all.py

# `fusec check` on the slowest specs buildable under the limits (docs/benchmarks.md).
bench-hostile: setup
	.venv/bin/python bench/run_all.py hostile

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache

# Every keras.applications model: import -> check -> compile -> same outputs (docs/conformance.md; an hour or more).
.PHONY: conformance
conformance: setup
	.venv/bin/python tools/conformance.py
