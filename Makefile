# The two commands in README.md. Both set up .venv first (fast when nothing changed).
.PHONY: setup demo test test-all

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/tunesmith demo

test: setup
	.venv/bin/python -m pytest -q

test-all: setup
	.venv/bin/python -m pytest -q -m ""
