# The two commands of the README: `make demo` and `make test`. Both install what they need.
.PHONY: demo test unit lint bench bench-dist setup

setup:
	@tools/setup.sh

demo: setup
	@.venv/bin/python -m tools.demo

lint: setup
	.venv/bin/ruff check fastsync tests tools bench
	.venv/bin/mypy

test: lint
	.venv/bin/python -m pytest -q

# The fast part: pure logic, property tests and store tests without a server (about a minute).
unit: setup
	.venv/bin/python -m pytest -q -m "not dovecot"

bench:
	@tools/setup.sh --bench
	@.venv/bin/python -m bench.run $(ARGS)

bench-dist:
	@tools/setup.sh --bench
	@.venv/bin/python -m bench.dist $(ARGS)
