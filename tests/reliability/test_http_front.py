"""The HTTP front: JSON errors everywhere, 405 with Allow, bounded load, refused limits."""

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from dftopk_cascade.serving.cascade_inference import CascadeSizes
from dftopk_cascade.serving.recommend_api import RequestLimits
from dftopk_cascade.serving.server import (
    RecommendService,
    _parser,
    build_server,
    check_server_options,
)

BODY = b'{"requests": [{"user": [1, 2, 0, 3, 4], "context": [0, 13, 5]}]}'


class FixedService(RecommendService):
    """Answers every valid body with a fixed result after ``delay_s`` (no models needed)."""

    delay_s = 0.0

    def recommend(self, body: bytes) -> dict:
        from dftopk_cascade.serving.recommend_api import parse_recommend_body

        parse_recommend_body(body, self.defaults, self.limits)
        time.sleep(self.delay_s)
        return {"results": [{"video_ids": [1]}]}


@pytest.fixture
def front():
    started = []

    def start(delay_s: float = 0.0, max_pending: int = 256):
        service = FixedService(
            None, CascadeSizes(20, 10, 5), RequestLimits(), 10.0, {}, max_pending
        )
        service.delay_s = delay_s
        server = build_server(service, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server.server_address[1]

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def call(port: int, method: str, path: str, body: bytes | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "body",
    [
        b'{"requests": [{"user": [' + b"9" * 5000 + b', 2, 0, 3, 4], "context": [0, 1, 2]}]}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=["5000-digit int", "100000-deep nesting"],
)
def test_hostile_json_is_a_400(front, body) -> None:
    status, _, data = call(front(), "POST", "/v1/recommend", body)
    assert status == 400
    assert json.loads(data)["error"].startswith("RequestError: the body is not valid JSON")


def test_wrong_methods_get_405_with_allow_and_json(front) -> None:
    port = front()
    status, headers, data = call(port, "GET", "/v1/recommend")
    assert status == 405 and headers["Allow"] == "POST, OPTIONS"
    assert "does not answer GET" in json.loads(data)["error"]
    for method in ("PUT", "DELETE", "PATCH"):
        status, headers, data = call(port, method, "/v1/recommend", b"{}")
        assert status == 405 and headers["Content-Type"] == "application/json", method
        assert json.loads(data)["error"]
    status, headers, data = call(port, "OPTIONS", "/v1/recommend")
    assert status == 200 and json.loads(data) == {"allow": ["POST", "OPTIONS"]}
    status, headers, data = call(port, "HEAD", "/healthz")
    assert status == 200 and data == b"" and headers["Content-Type"] == "application/json"
    status, headers, data = call(port, "BREW", "/healthz")
    assert status == 501 and json.loads(data)["error"]


def test_the_query_string_is_ignored(front) -> None:
    status, _, data = call(front(), "GET", "/healthz?x=1")
    assert status == 200 and json.loads(data)["status"] == "ok"


def test_64_concurrent_clients_get_answers_not_resets(front) -> None:
    port = front(delay_s=0.01)

    def one(_):
        return call(port, "POST", "/v1/recommend", BODY)[0]

    with ThreadPoolExecutor(64) as pool:
        statuses = list(pool.map(one, range(256)))  # a reset would raise here
    assert set(statuses) == {200}


def test_a_full_queue_answers_503_with_retry_after(front) -> None:
    port = front(delay_s=1.0, max_pending=1)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: call(port, "POST", "/v1/recommend", BODY), range(4)))
    statuses = sorted(status for status, _, _ in answers)
    assert statuses[0] == 200 and 503 in statuses
    busy = next(answer for answer in answers if answer[0] == 503)
    assert busy[1]["Retry-After"] == "1" and "busy" in json.loads(busy[2])["error"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--request-timeout-s", "-1"], "--request-timeout-s must be above 0 and at most 3600"),
        (["--max-requests", "0"], "--max-requests must be between 1 and 100000, got 0"),
        (
            ["--max-retrieval-keep", "0"],
            "--max-retrieval-keep must be between 1 and 10000000, got 0",
        ),
        (["--max-retrieval-keep", "100"], "--retrieval-keep 200 is above --max-retrieval-keep 100"),
    ],
)
def test_nonsensical_limits_are_refused_at_start(flags, message) -> None:
    arguments = _parser().parse_args(["--port", "0", "--export-dir", "e", *flags])
    with pytest.raises(ValueError, match=message):
        check_server_options(arguments)


def test_a_port_in_use_is_named(front) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = FixedService(None, CascadeSizes(20, 10, 5))
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}: Address already"):
            build_server(service, "127.0.0.1", port)
