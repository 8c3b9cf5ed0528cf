"""GET /health: 200 with the counts while healthy, 503 when the store does not answer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from sync.storage.mdm import MdmStore
from sync.worker.health import HealthCheck, start_health_server
from sync.worker.stats import WorkerStats
from tests.unit.mapping.builders import sa_message
from tests.unit.worker.support import ADMIN, new_rig


async def get(port: int, path: str = "/health", method: str = "GET") -> tuple[int, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body else None


async def serve(check: HealthCheck) -> tuple[asyncio.Server, int]:
    server = await start_health_server(check, 0)
    return server, server.sockets[0].getsockname()[1]


async def test_health_answers_200_with_counts_and_offsets(tmp_path: Path) -> None:
    rig = await new_rig(f"sqlite:///{tmp_path / 'mdm.db'}", "health")
    await rig.send(sa_message("SA-1"), b"junk")
    worker = rig.worker()
    server, port = await serve(HealthCheck(worker.stats, rig.store))
    try:
        assert (await get(port))[0] == 503  # not started yet
        await worker.drain()
        status, body = await get(port)
        assert status == 200
        assert (body["status"], body["store"]) == ("ok", "ok")
        assert (body["counts"]["applied"], body["counts"]["dead_lettered"]) == (1, 1)
        assert body["published"] == {"acknowledgements": 1, "deadLetters": 1}
        assert sum(body["lag"]["c2m.sync-requests"].values()) == 0
        assert body["lastOffsets"]["c2m.sync-requests"]
        assert (await get(port, "/other"))[0] == 404
        assert (await get(port, method="POST"))[0] == 405
    finally:
        server.close()
        await server.wait_closed()
        rig.store.dispose()


async def test_health_answers_503_when_the_store_is_unreachable() -> None:
    stats = WorkerStats()
    stats.recovered()  # the worker itself thinks all is well
    unreachable = MdmStore("postgresql://nobody@127.0.0.1:1/mdm", ADMIN)
    server, port = await serve(HealthCheck(stats, unreachable))
    try:
        status, body = await get(port)
        assert status == 503
        assert body["status"] == "failing"
        assert body["store"].startswith("unreachable: OperationalError")
    finally:
        server.close()
        await server.wait_closed()
        unreachable.dispose()
