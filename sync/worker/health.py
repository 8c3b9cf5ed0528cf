"""The worker's health: ``GET /health`` answers JSON, 200 when healthy, 503 otherwise.

Healthy means: started, the last record was consumed without a store failure, and the MDM store
answers a ping now (checked on every request, bounded by a timeout). The body carries the
status, the counts per verdict, the last processed offset and the lag per partition, and the
last error. The faust runner serves it from faust's web server; the bus loop from the tiny
asyncio server here (no web framework needed for one read-only route).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sync.mdm.ports import ConsumerStorePort
from sync.worker.stats import WorkerStats, WorkerStatus

PING_TIMEOUT_S = 2.0


class HealthCheck:
    def __init__(self, stats: WorkerStats, store: ConsumerStorePort,
                 ping_timeout_s: float = PING_TIMEOUT_S) -> None:
        self.stats = stats
        self.store = store
        self.ping_timeout_s = ping_timeout_s

    async def report(self) -> tuple[int, dict[str, Any]]:
        """HTTP status and JSON body."""
        body = self.stats.snapshot()
        try:
            await asyncio.wait_for(asyncio.to_thread(self.store.ping), self.ping_timeout_s)
            body["store"] = "ok"
        except Exception as error:  # any failure to answer is the store being unreachable
            body["status"] = WorkerStatus.FAILING.value
            body["store"] = f"unreachable: {type(error).__name__}: {error}".splitlines()[0]
        return (200 if body["status"] == WorkerStatus.OK.value else 503), body


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


async def start_health_server(check: HealthCheck, port: int,
                              host: str = "127.0.0.1") -> asyncio.Server:
    """Serve ``GET /health`` on ``host:port`` (port 0: any free port, see the server's
    sockets). Anything else gets 404 or 405."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5.0)
            while (await asyncio.wait_for(reader.readline(), 5.0)).strip():
                pass  # headers: nothing in them changes the answer
            parts = request.decode("latin-1").split()
            if len(parts) < 2 or parts[1].split("?")[0] != "/health":
                status, body = 404, {"error": "not found; try GET /health"}
            elif parts[0] not in {"GET", "HEAD"}:
                status, body = 405, {"error": f"method {parts[0]} not allowed; use GET"}
            else:
                status, body = await check.report()
            payload = json.dumps(body, sort_keys=True).encode("utf-8")
            head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
                    "Content-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode("latin-1") + (b"" if parts[:1] == ["HEAD"] else payload))
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass  # a client that says nothing or goes away gets nothing
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
