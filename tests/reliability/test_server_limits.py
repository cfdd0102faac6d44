"""The HTTP front's limits: flags refused at start, bounded connections, read deadlines."""

import http.client
import json
import os
import resource
import socket
import threading
import time

import pytest
from dftopk_cascade.command_line.entry import run_command
from dftopk_cascade.serving.cascade_inference import CascadeSizes
from dftopk_cascade.serving.server import (
    RecommendService,
    _parser,
    build_server,
    check_server_options,
    main,
)

BODY = b'{"requests": [{"user": [1, 2, 0, 3, 4], "context": [0, 13, 5]}]}'
SLOW_SOCKETS = 2000


class FixedService(RecommendService):
    """Answers every body with a fixed result after ``delay_s`` (no models needed)."""

    delay_s = 0.0

    def recommend(self, body: bytes) -> dict:
        time.sleep(self.delay_s)
        return {"results": [{"video_ids": [1]}]}


@pytest.fixture
def front():
    started = []

    def start(max_connections: int, header_timeout_s: float = 30.0, delay_s: float = 0.0):
        service = FixedService(None, CascadeSizes(20, 10, 5))
        service.delay_s = delay_s
        server = build_server(service, "127.0.0.1", 0, max_connections, header_timeout_s)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def recommend(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/v1/recommend", body=BODY)
        response = connection.getresponse()
        assert json.loads(response.read())["results"]
        return response.status
    finally:
        connection.close()


def closed_by_server(client: socket.socket) -> bool:
    """True when the server closed the connection (end of stream or a reset)."""
    try:
        return client.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--request-timeout-s", "inf"], "--request-timeout-s must be above 0 and at most 3600"),
        (["--request-timeout-s", "1e300"], "--request-timeout-s must be above 0 and at most"),
        (["--request-timeout-s", "nan"], "--request-timeout-s must be above 0 and at most"),
        (["--timeout-s", "inf"], "--timeout-s must be above 0 and at most 3600 seconds"),
        (["--batch-wait-ms", "1e12"], "--batch-wait-ms must be between 0 and 10000, got 1000000"),
        (["--batch-wait-ms", "nan"], "--batch-wait-ms must be between 0 and 10000, got nan"),
        (["--batch-wait-ms", "5000", "--request-timeout-s", "2"], "is not below --request-t"),
        (["--header-timeout-s", "0"], "--header-timeout-s must be above 0 and at most 600"),
        (["--header-timeout-s", "inf"], "--header-timeout-s must be above 0 and at most 600"),
        (["--max-connections", "0"], "--max-connections must be between 1 and 100000, got 0"),
        (["--retries", "1000000"], "--retries must be between 0 and 100, got 1000000"),
        (["--port", "70000"], "--port must be between 0 and 65535, got 70000"),
    ],
)
def test_absurd_limits_are_refused_at_start_with_the_range(flags, message) -> None:
    arguments = _parser().parse_args(["--port", "0", "--export-dir", "e", *flags])
    with pytest.raises(ValueError, match=message):
        check_server_options(arguments)


def test_the_command_refuses_an_infinite_timeout_in_one_line(capsys) -> None:
    argv = ["--port", "0", "--export-dir", "e", "--request-timeout-s", "inf"]
    with pytest.raises(SystemExit) as exit_info:
        run_command(main, "python -m dftopk_cascade.serving.server", argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "python -m dftopk_cascade.serving.server: error: --request-timeout-s must be above 0 and "
        "at most 3600 "
        "seconds, got inf\n"
    )


def test_a_client_is_answered_while_2000_slow_sockets_are_open(front) -> None:
    """The file descriptors left to the process are fewer than the slow sockets need on both
    ends, as with ``ulimit -n 1024`` against 1,100 sockets: without a cap the server could not
    even accept the client."""
    capacity = 64
    server = front(max_connections=capacity)
    port = server.server_address[1]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    open_now = len(os.listdir("/proc/self/fd"))
    needed = open_now + SLOW_SOCKETS + capacity + 256
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the hard limit on open files ({hard}) is below the {needed} needed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    slow: list[socket.socket] = []
    try:
        for _ in range(SLOW_SOCKETS):
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            client.sendall(b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\n")  # and never the rest
            slow.append(client)
        assert recommend(port) == 200
        assert len(server.connections) <= capacity
    finally:
        for client in slow:
            client.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_longest_reading_connection_is_evicted_at_the_cap(front) -> None:
    port = front(max_connections=1).server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
        idle.sendall(b"GET /healthz HTTP/1.1\r\n")  # a request that never ends
        assert recommend(port) == 200
        assert closed_by_server(idle)


def test_clients_wait_for_a_slot_when_every_connection_is_being_answered(front) -> None:
    port = front(max_connections=1, delay_s=0.3).server_address[1]
    statuses: list[int] = []
    clients = [threading.Thread(target=lambda: statuses.append(recommend(port))) for _ in "abc"]
    for client in clients:
        client.start()
    for client in clients:
        client.join(30)
    assert statuses == [200, 200, 200]


def test_headers_sent_byte_by_byte_meet_the_header_deadline(front) -> None:
    port = front(max_connections=8, header_timeout_s=0.5).server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\n")
        sent = 0
        try:
            for _ in range(100):  # 10 s of one byte per 0.1 s, far beyond the deadline
                client.sendall(b"X")
                sent += 1
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection
        assert closed_by_server(client)
        assert sent < 100


def test_an_idle_kept_alive_connection_is_closed_after_the_header_deadline(front) -> None:
    port = front(max_connections=8, header_timeout_s=0.5).server_address[1]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/healthz")
    assert connection.getresponse().read()
    assert closed_by_server(connection.sock)  # within the 10 s socket timeout, not never
    connection.close()
