"""Malformed request headers get a JSON 4xx/501 from the HTTP front, never silence or a crash.

The fuzz test sends random header blocks (a fixed seed: the same blocks on every run) and
compares each answer's status with a reference reading of RFC 9110/9112's rules.
"""

import json
import logging
import random
import re
import socket
import threading

import pytest
from dftopk_cascade.serving.cascade_inference import CascadeSizes
from dftopk_cascade.serving.recommend_api import parse_recommend_body
from dftopk_cascade.serving.server import RecommendService, build_server

FUZZ_CASES = 1000
LARGEST_BODY = 1 << 20  # RequestLimits' default max_body_bytes
_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # a header name: printable ASCII but ':'


class FixedService(RecommendService):
    """Answers every valid JSON body with a fixed result (no models needed)."""

    def recommend(self, body: bytes) -> dict:
        parse_recommend_body(body, self.defaults, self.limits)
        return {"results": [{"video_ids": [1]}]}


@pytest.fixture(scope="module")
def port():
    service = FixedService(None, CascadeSizes(20, 10, 5))
    server = build_server(service, "127.0.0.1", 0, max_connections=16, header_timeout_s=10.0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def exchange(port: int, request: bytes) -> tuple[int, dict]:
    """Sends raw bytes and reads the whole answer: (status, JSON body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as client:
        client.sendall(request)
        chunks = []
        while chunk := client.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    assert head, f"no answer to {request!r}"
    return int(head.split(b" ")[1]), json.loads(body)


def raw_request(method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Connection: close"]
    lines += [f"{name}: {value}" if name is not None else value for name, value in headers]
    head = "\r\n".join(lines) + "\r\n\r\n"
    return b"".join(_wire(char) for char in head) + body


def _wire(char: str) -> bytes:
    """A character as a client sends it: Latin-1 when it can, else UTF-8."""
    try:
        return char.encode("latin-1")
    except UnicodeEncodeError:
        return char.encode("utf-8")


@pytest.mark.parametrize(
    ("length", "status"),
    [
        ("\u00b2", 400),  # superscript two: str.isdigit() says yes, int() says no
        ("\u00b9\u00b3", 400),
        ("\u0661", 400),  # Arabic-Indic one
        ("\uff15", 400),  # fullwidth five
        ("+5", 400),
        ("-1", 400),
        ("5.0", 400),
        ("0x5", 400),
        ("5 5", 400),
        ("1" * 19, 400),
        ("", 400),
        ("2", 400),  # well-formed; the two bytes are not a valid request
        (str(LARGEST_BODY + 1), 413),
    ],
)
def test_a_malformed_content_length_gets_400(port, length, status, caplog) -> None:
    body = b"{}" if length == "2" else b""
    request = raw_request("POST", "/v1/recommend", [("Content-Length", length)], body)
    with caplog.at_level(logging.ERROR, logger="dftopk_cascade.serving.server"):
        got, answer = exchange(port, request)
    assert (got, bool(answer["error"])) == (status, True)
    assert not caplog.records  # no traceback in the server log


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ([("Content-Length", "2"), ("Content-Length", "3")], 400, "conflicting Content-Length"),
        ([("Transfer-Encoding", "chunked")], 501, "Transfer-Encoding is not supported"),
        ([(None, "Content-Length : 2")], 400, "malformed header line 'Content-Length : 2'"),
        ([(None, "no colon here")], 400, "malformed header line"),
        ([(None, ":2")], 400, "malformed header line"),
        ([("Content-Length", "2\x852")], 400, "Content-Length must be a number of bytes"),
        ([], 411, "a Content-Length header is needed"),
    ],
)
def test_malformed_header_blocks_are_named(port, headers, status, message) -> None:
    got, answer = exchange(port, raw_request("POST", "/v1/recommend", headers, b""))
    assert got == status and message in answer["error"]


def _random_header(rng: random.Random) -> tuple[str | None, str]:
    name = rng.choice(
        [
            *("Content-Length", "content-LENGTH", "Transfer-Encoding", "Host", "X-Fuzz"),
            *("X A", "", "Ké", "Content-Length ", "".join(rng.choices("abcXYZ-_", k=5))),
        ]
    )
    value = rng.choice(
        [
            str(rng.randint(0, 64)),
            "0" * rng.randint(1, 3) + str(rng.randint(0, 9)),
            str(rng.randint(LARGEST_BODY + 1, 10**17)),
            "9" * 19,
            " \t" + str(rng.randint(0, 9)) + "\t ",
            "".join(rng.choices("0123456789+-. ,xe\u00b2\u00b3\u00b9\u0661\uff15", k=3)),
            "".join(rng.choices([chr(c) for c in range(0x20, 0x7F)] + ["\t", "\xe9", "\xff"], k=8)),
        ]
    )
    if rng.random() < 0.05:  # a line without a colon (and not a continuation line)
        return None, (name + value).replace(":", "").strip() or "x"
    return name, value


def reference_status(method: str, headers: list[tuple[str | None, str]]) -> tuple[int, int]:
    """The status RFC 9110/9112 call for, and the body bytes the request must carry."""
    lines = [(name, value) for name, value in headers]
    if any(name is None or not _NAME.fullmatch(name) for name, _ in lines):
        return 400, 0
    if any(name.lower() == "transfer-encoding" for name, _ in lines):
        return 501, 0
    lengths = {value.strip(" \t") for name, value in lines if name.lower() == "content-length"}
    if len(lengths) > 1 or any(not re.fullmatch(r"[0-9]{1,18}", v) for v in lengths):
        return 400, 0
    if not lengths:
        return (411 if method == "POST" else 200), 0
    length = int(lengths.pop())
    if length > LARGEST_BODY:
        return 413, 0
    return (400 if method == "POST" else 200), length  # the fuzz body is never valid JSON


def test_fuzzed_header_blocks_get_the_reference_status(port, caplog) -> None:
    rng = random.Random(29)
    with caplog.at_level(logging.ERROR, logger="dftopk_cascade.serving.server"):
        for case in range(FUZZ_CASES):
            method, path = rng.choice([("POST", "/v1/recommend"), ("GET", "/healthz")])
            headers = [_random_header(rng) for _ in range(rng.randint(0, 4))]
            status, length = reference_status(method, headers)
            request = raw_request(method, path, headers, b"x" * length)
            got, answer = exchange(port, request)
            assert got == status, f"case {case}: {request!r} got {got}: {answer}"
            assert (status == 200) == ("error" not in answer), f"case {case}: {answer}"
    assert not caplog.records
    assert exchange(port, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")[0] == 200
