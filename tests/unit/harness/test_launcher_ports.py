"""The launcher's port check: a port left in TIME_WAIT by a stopped broker's connections is free
for a broker started again at once (the broker binds with SO_REUSEADDR too)."""

from __future__ import annotations

import socket

from sync.devtools.kafka import _port_is_free


def test_a_port_in_time_wait_is_free_for_a_restarted_broker() -> None:
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert not _port_is_free(port)  # listening: taken
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end waits in TIME_WAIT
        client.close()
    assert _port_is_free(port)
