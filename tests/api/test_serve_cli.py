"""``c2m-sync serve`` as an operator starts it: uvicorn on a port, tokens from a token file and
the environment, reads open or private; a token file that cannot be read stops it at once."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from bench.saact_data import populate
from sync.cli import main
from tests.api.support import EXAMPLE

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_args(folder: Path) -> list[str]:
    return ["--ccb-db-url", f"sqlite:///{folder / 'ccb.db'}",
            "--mdm-db-url", f"sqlite:///{folder / 'mdm.db'}", "--business-date", "2025-03-03"]


class Server:
    def __init__(self, base_url: str, process: subprocess.Popen[str]) -> None:
        self.base_url = base_url
        self.process = process


def start(folder: Path, *options: str, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sync.cli", *cli_args(folder), "serve", "--port", str(port),
         *options], cwd=folder, env={**os.environ, **(env or {})}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {process.stdout.read() if process.stdout else ''}")
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return Server(base_url, process)
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("serve did not answer /health within 30 s")


def stop(server: Server) -> str:
    server.process.terminate()
    try:
        output, _ = server.process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        output, _ = server.process.communicate()
    return output


@pytest.fixture
def loaded(tmp_path: Path) -> Path:
    assert main([*cli_args(tmp_path), "ccb", "load", str(EXAMPLE)]) == 0
    return tmp_path


def test_serve_answers_with_tokens_from_the_file_and_the_environment(loaded: Path) -> None:
    token_file = loaded / "tokens"
    token_file.write_text("# operators\nfile-token\n", "utf-8")
    server = start(loaded, "--token-file", str(token_file),
                   env={"C2M_SYNC_API_TOKENS": "env-token"})
    try:
        body = {"account_id": "A-TN-01", "stop_date": "2025-03-10", "sa_ids": ["SA-TN01-E"],
                "user": "csr1"}
        url = f"{server.base_url}/api/commands/request-stop"
        refused = httpx.post(url, json=body)
        assert refused.status_code == 401
        assert httpx.post(url, json=body,
                          headers={"Authorization": "Bearer file-token"}).status_code == 200
        moved = httpx.post(f"{server.base_url}/api/commands/change-stop-date",
                           json={"sa_id": "SA-TN01-E", "stop_date": "2025-03-11",
                                 "user": "csr1"},
                           headers={"Authorization": "Bearer env-token"})
        assert moved.status_code == 200
        sa = httpx.get(f"{server.base_url}/api/sas/SA-TN01-E").json()
        assert (sa["sa"]["status"], sa["sa"]["end_date"]) == ("30", "2025-03-11")
        assert httpx.get(f"{server.base_url}/openapi.json").json()["info"]["title"] == "c2m-sync"
    finally:
        output = stop(server)
    assert "file-token" not in output
    assert "env-token" not in output


def test_serve_with_private_reads_and_no_tokens(loaded: Path) -> None:
    server = start(loaded, "--private-reads", env={"C2M_SYNC_API_TOKENS": ""})
    try:
        assert httpx.get(f"{server.base_url}/api/accounts/A-TN-01").status_code == 401
        refused = httpx.post(f"{server.base_url}/api/commands/stop",
                             json={"sa_id": "SA-TN01-E", "user": "csr1"},
                             headers={"Authorization": "Bearer anything"})
        assert refused.status_code == 401
    finally:
        output = stop(server)
    assert "no API tokens" in output


def test_serve_stops_on_a_token_file_it_cannot_read(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*cli_args(tmp_path), "serve", "--token-file", str(tmp_path / "missing")])
    assert code == 2
    assert "missing: cannot read token file" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--ccb-db-url", "--mdm-db-url"])
def test_serve_stops_at_start_on_a_database_file_that_is_not_a_database(
        tmp_path: Path, option: str) -> None:
    """Before it listens, not at every request: an operator sees it where they started it."""
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(4096))
    url = f"sqlite:///{garbage}"
    finished = subprocess.run(
        [sys.executable, "-m", "sync.cli", *cli_args(tmp_path), option, url, "serve",
         "--port", str(free_port())], cwd=tmp_path, text=True, capture_output=True,
        timeout=60)
    assert finished.returncode == 2, finished.stderr
    assert finished.stderr.strip().splitlines()[-1] == (
        f"error: database URL {url!r}: {garbage} is not a SQLite database file")


def test_serve_refuses_a_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--port", "70000"])
    assert "port 70000 out of range" in capsys.readouterr().err


def test_step_5_9_sigterm_to_serve_stops_a_batch_run_between_units_before_it_exits(
        loaded: Path) -> None:
    """The operator's restart while a long SAACT runs over HTTP: uvicorn's shutdown asks the
    run to stop, the run ends after its chunk under way (whole chunks applied, nothing of the
    next) and the server exits; the next run does the rest."""
    url = f"sqlite:///{loaded / 'ccb.db'}"
    engine = create_engine(url)
    populate(engine, 20_000, 0, dt.date(2025, 3, 3))
    moved = text("SELECT count(*) FROM ccb_service_agreements WHERE id LIKE 'BSA-%' "
                 "AND status IN ('20', '40')")

    def count_moved() -> int:
        with engine.connect() as connection:
            return int(connection.execute(moved).scalar_one())

    server = start(loaded, env={"C2M_SYNC_API_TOKENS": "run-token"})
    try:
        response = httpx.post(f"{server.base_url}/api/batches/SAACT/runs",
                              json={"chunk_size": 10}, timeout=30,
                              headers={"Authorization": "Bearer run-token",
                                       "Prefer": "respond-async"})
        assert response.status_code == 202, response.text
        deadline = time.monotonic() + 60
        while count_moved() < 50 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        output = stop(server)
    # uvicorn ends by raising the SIGTERM it caught again, once the shutdown is complete.
    assert "Application shutdown complete" in output, output
    done = count_moved()
    assert done % 10 == 0  # whole chunks only: none rolled back half-way
    assert 50 <= done < 20_000
    assert "had not stopped" not in output
    assert re.search(r"BR-1 \(SAACT\) STOPPED after (\d+) of 20000", output), output

    rest = start(loaded, env={"C2M_SYNC_API_TOKENS": "run-token"})
    try:
        report = httpx.post(f"{rest.base_url}/api/batches/SAACT/runs", json={}, timeout=120,
                            headers={"Authorization": "Bearer run-token"}).json()
    finally:
        stop(rest)
    assert (report["examined"], report["stopped"]) == (20_000 - done, False)
    assert count_moved() == 20_000
    engine.dispose()
