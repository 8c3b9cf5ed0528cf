# c2m-sync — the commands the README documents.
.PHONY: test demo install lint screenshots kafka-start kafka-stop clean

# Everything, from a fresh machine: environment, Kafka, PostgreSQL, ruff, mypy, pytest.
test:
	bash scripts/test.sh

# The demonstration on the embedded default (SQLite files, in-process bus): no servers needed.
demo: install
	.venv/bin/c2m-sync demo

install:
	bash scripts/bootstrap.sh

lint: install
	.venv/bin/ruff check sync tests bench
	.venv/bin/mypy

# The console's screenshots in docs/screenshots, taken again by its browser tests (Kafka is
# started by the tests' own launcher; Chromium from Debian's package).
screenshots: install
	C2M_SYNC_SCREENSHOTS_DIR=docs/screenshots .venv/bin/pytest -q tests/browser/test_console_pipeline.py

kafka-start: install
	.venv/bin/c2m-sync dev kafka start

kafka-stop: install
	.venv/bin/c2m-sync dev kafka stop

clean:
	rm -rf .venv var .mypy_cache .ruff_cache .pytest_cache .hypothesis
