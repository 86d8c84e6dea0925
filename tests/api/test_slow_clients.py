"""Connections that never finish their request (api/connections.py): thousands of them leave the
server answering, are closed after --header-timeout, and do not flood the log."""

from __future__ import annotations

import resource
import socket
import time
import urllib.request

from .conftest import ServerProcess

SLOW = 2000


def test_two_thousand_slow_connections_leave_queue_answering(fresh_base_dir):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))  # this test holds 2000 sockets
    server = ServerProcess(fresh_base_dir, ["--header-timeout", "3"]).start()
    slow: list[socket.socket] = []
    try:
        for _ in range(SLOW):
            connection = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            connection.sendall(b"GET /queue HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
            slow.append(connection)
        started = time.monotonic()
        with urllib.request.urlopen(server.url + "/queue", timeout=5) as response:
            assert response.status == 200
        assert time.monotonic() - started < 1.0
        time.sleep(4)  # past the header timeout: the server has closed every slow connection
        closed = 0
        for connection in slow:
            connection.settimeout(0.5)
            try:
                closed += connection.recv(1) == b""
            except (ConnectionResetError, socket.timeout):
                closed += 1
        assert closed == SLOW
        log = server.log()
        assert len(log) < 200_000, len(log)  # a few summary lines, not one per connection
        assert "sent no request" in log
    finally:
        for connection in slow:
            connection.close()
        server.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
