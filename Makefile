# c2m-sync — the commands the README documents.
.PHONY: test demo install lint kafka-start kafka-stop clean

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

kafka-start: install
	.venv/bin/c2m-sync dev kafka start

kafka-stop: install
	.venv/bin/c2m-sync dev kafka stop

clean:
	rm -rf .venv var .mypy_cache .ruff_cache .pytest_cache .hypothesis
