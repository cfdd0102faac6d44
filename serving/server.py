"""The HTTP front of the cascade: ``POST /v1/recommend``, ``GET /healthz`` and ``GET /readyz``.

    python -m dftopk_cascade.serving.server --export-dir EXPORT --port 8080                 #
    embedded models python -m dftopk_cascade.serving.server --port 8080 --backend grpc --grpc-target
    127.0.0.1:8500 python -m dftopk_cascade.serving.server --port 8080 --backend rest --rest-url
    http://127.0.0.1:8501

Bodies are validated (``dftopk_cascade.serving.recommend_api``): a bad request gets HTTP 400 with
``{"error": message}``, never a crash. Concurrent requests are micro-batched
(``dftopk_cascade.serving.micro_batcher``). Backend failures answer 502 (the model server refused or
failed), 503 (unavailable after retries, with ``Retry-After``) or 504 (timeout), each with a
message; a request or answer over the model server's message-size limit is the request's fault: 413
(the request) or 400 (the answer it asks for).

``/healthz`` is liveness: 200 while the process answers. ``/readyz`` is readiness: 200 when each
model is AVAILABLE at the version the front calls, asked of the model server through TF Serving's
model status API, else 503 naming each model's version and state
(``dftopk_cascade.serving.readiness``).

Every answer is JSON, errors included: a known path with another method gets 405 with an
``Allow`` header (``HEAD`` and ``OPTIONS`` are answered too), an unknown path 404, a request
line the server cannot parse 400 or 501. The query string is ignored (``/healthz?x=1``). The
listen backlog holds ``LISTEN_BACKLOG`` connections, so a burst of clients waits instead of
being reset; at most ``--max-pending`` recommend requests are in service at once and the next
ones get an immediate 503 with ``Retry-After`` (a bounded queue: latency stays bounded).

Slow or idle clients cannot shut others out (``dftopk_cascade.serving.http_connections``): at most
``--max-connections`` connections are open, the one sending its request longest making room for
a new one, and a request line and headers must arrive within ``--header-timeout-s``. Headers are
read strictly (``dftopk_cascade.serving.http_headers``: ``Content-Length: ²`` is a 400).

Example:
    >>> import threading, urllib.request
    >>> from dftopk_cascade.serving.backends import LocalBackend
    >>> from dftopk_cascade.serving.export.toy_servables import toy_cascade_export
    >>> batcher = CascadeBatcher(Cascade(LocalBackend(toy_cascade_export())))
    >>> server = build_server(RecommendService(batcher, CascadeSizes(200, 50, 10)), "127.0.0.1", 0)
    >>> threading.Thread(target=server.serve_forever, daemon=True).start()
    >>> url = f"http://127.0.0.1:{server.server_address[1]}{RECOMMEND_PATH}"  # the port picked
    >>> body = b'{"requests": [{"user": [1, 2, 0, 3, 4], "context": [0, 13, 5]}], "k": 3}'
    >>> with urllib.request.urlopen(url, data=body) as answer:
    ...     len(json.load(answer)["results"][0]["video_ids"])
    3
    >>> server.shutdown()
    >>> server.server_close()
    >>> batcher.close()
"""

import argparse
import io
import json
import logging
import math
import socket
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dftopk_cascade.command_line.deprecated_flags import add_renamed_flag
from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.serving.backends import (
    BACKEND_NAMES,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    BackendAnswerTooLargeError,
    BackendError,
    BackendRequestError,
    BackendRequestTooLargeError,
    BackendTimeoutError,
    BackendUnavailableError,
    make_backend,
)
from dftopk_cascade.serving.cascade_inference import (  # DEFAULT_SIZES: for the examples
    DEFAULT_SIZES,  # noqa: F401
    Cascade,
    CascadeSizes,
    add_size_flags,
    check_sizes,
)
from dftopk_cascade.serving.http_connections import ConnectionSlots, DeadlineReader
from dftopk_cascade.serving.http_headers import HeaderError, body_length
from dftopk_cascade.serving.micro_batcher import CascadeBatcher
from dftopk_cascade.serving.readiness import Readiness, check_readiness
from dftopk_cascade.serving.recommend_api import (
    RequestError,
    RequestLimits,
    parse_recommend_body,
    recommend_answer,
)

LOGGER = logging.getLogger(__name__)
RECOMMEND_PATH = "/v1/recommend"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
#: Methods each path answers (``Allow`` of a 405).
ALLOWED_METHODS = {
    RECOMMEND_PATH: ("POST", "OPTIONS"),
    HEALTH_PATH: ("GET", "HEAD", "OPTIONS"),
    READY_PATH: ("GET", "HEAD", "OPTIONS"),
}
#: Connections the kernel queues before ``accept`` (the socketserver default, 5, resets bursts).
LISTEN_BACKLOG = 1024
DEFAULT_MAX_PENDING = 256
#: ``Retry-After`` (seconds) of every 503: the queue is full, or the model server unavailable.
RETRY_AFTER_S = "1"
#: Open connections at once (``--max-connections``): well below the default ``ulimit -n`` 1024.
DEFAULT_MAX_CONNECTIONS = 512
#: Seconds a connection may take to send a request's line and headers, or idle between requests.
DEFAULT_HEADER_TIMEOUT_S = 5.0
#: Seconds a client may take to send a request's body once its headers are read.
BODY_TIMEOUT_S = 30.0


@dataclass
class RecommendService:
    """What the HTTP handlers serve with: the batcher, default sizes, limits, and a description.

    Example:
        >>> from dftopk_cascade.serving.export.toy_servables import toy_backend
        >>> batcher = CascadeBatcher(Cascade(toy_backend()))
        >>> service = RecommendService(batcher, CascadeSizes(200, 50, 10), RequestLimits(), 5.0)
        >>> service.request_timeout_s
        5.0
        >>> batcher.close()
    """

    batcher: CascadeBatcher
    defaults: CascadeSizes
    limits: RequestLimits = field(default_factory=RequestLimits)
    request_timeout_s: float = 10.0
    description: dict[str, Any] = field(default_factory=dict)
    max_pending: int = DEFAULT_MAX_PENDING

    def __post_init__(self) -> None:
        if not self.request_timeout_s > 0:
            raise ValueError(f"request_timeout_s must be > 0, got {self.request_timeout_s}")
        if self.max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {self.max_pending}")
        self._slots = threading.BoundedSemaphore(self.max_pending)

    def admit(self) -> bool:
        """Takes one of the ``max_pending`` slots, or returns False when all are taken.

        Example:
            >>> from dftopk_cascade.serving.export.toy_servables import toy_backend
            >>> batcher = CascadeBatcher(Cascade(toy_backend()))
            >>> service = RecommendService(batcher, DEFAULT_SIZES, max_pending=1)
            >>> service.admit(), service.admit()  # the one slot is taken
            (True, False)
            >>> service.release(); batcher.close()
        """
        return self._slots.acquire(blocking=False)

    def release(self) -> None:
        """Gives back the slot ``admit`` took."""
        self._slots.release()

    def readiness(self) -> Readiness:
        """Whether each model is AVAILABLE at the version the front calls
        (``dftopk_cascade.serving.readiness``).

        Example:
            >>> from dftopk_cascade.serving.export.toy_servables import toy_backend
            >>> batcher = CascadeBatcher(Cascade(toy_backend()))
            >>> RecommendService(batcher, DEFAULT_SIZES).readiness().ready
            True
            >>> batcher.close()
        """
        return check_readiness(self.batcher.cascade.backend)

    def recommend(self, body: bytes) -> dict[str, Any]:
        """The JSON answer for a body; raises ``RequestError``, ``BackendError``, ``TimeoutError``.

        Example:
            >>> from dftopk_cascade.serving.export.toy_servables import toy_backend
            >>> batcher = CascadeBatcher(Cascade(toy_backend()))
            >>> service = RecommendService(batcher, CascadeSizes(200, 50, 10))
            >>> service.recommend(b'{"requests": [{"user": [1, 2, 0, 3, 4], "context": [0, 1, 2]}]}'
            ... )["sizes"]
            {'retrieval_keep': 200, 'prerank_keep': 50, 'rank_keep': 10}
            >>> batcher.close()
        """
        call = parse_recommend_body(body, self.defaults, self.limits)
        result = self.batcher.recommend(call.features, call.sizes, self.request_timeout_s)
        return recommend_answer(result, call.sizes)


def _status_of(error: Exception) -> HTTPStatus:
    if isinstance(error, BackendRequestTooLargeError):
        return HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    if isinstance(error, RequestError | BackendAnswerTooLargeError):
        return HTTPStatus.BAD_REQUEST
    if isinstance(error, BackendUnavailableError):
        return HTTPStatus.SERVICE_UNAVAILABLE
    if isinstance(error, BackendTimeoutError | TimeoutError):
        return HTTPStatus.GATEWAY_TIMEOUT
    if isinstance(error, BackendRequestError | BackendError):
        return HTTPStatus.BAD_GATEWAY
    return HTTPStatus.INTERNAL_SERVER_ERROR


class RecommendHandler(BaseHTTPRequestHandler):
    """Answers ``POST /v1/recommend``, ``GET /healthz`` and ``GET /readyz`` with JSON."""

    server: "RecommendServer"
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; with Nagle's algorithm the body would wait for
    # the client's delayed ACK (about 40 ms) on every keep-alive request.
    disable_nagle_algorithm = True
    # The socket timeout of each write of an answer (reads have deadlines: handle_one_request,
    # parse_request).
    timeout = 60

    def setup(self) -> None:
        """Reads the connection through a ``DeadlineReader`` (the whole request has a deadline)."""
        super().setup()
        self.rfile.close()  # the plain reader; closing it lets the socket close with the request
        self._reader = DeadlineReader(self.connection, self.timeout)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        """Reads the next request line and headers within the server's header deadline."""
        self.server.connections.reading(self.connection)
        self._reader.deadline = time.monotonic() + self.server.header_timeout_s
        super().handle_one_request()

    def parse_request(self) -> bool:
        """The base class's parsing, strict header checks (``body_length``) and the body read.

        A malformed header block gets 400 (501 for a ``Transfer-Encoding``), a POST without
        ``Content-Length`` 411, a body over the limit 413; the connection then closes.
        """
        if not super().parse_request():
            return False
        try:
            length = body_length(self.headers)
        except HeaderError as error:
            self.send_error(error.status, str(error))
            return False
        if length is None and self.command == "POST":
            self.send_error(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header is needed")
            return False
        largest = self.server.service.limits.max_body_bytes
        if length is not None and length > largest:
            message = f"the body has {length} bytes, more than {largest}"
            self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, message)
            return False
        self.body = b""
        if length:
            self._reader.deadline = time.monotonic() + BODY_TIMEOUT_S
            self.body = self.rfile.read(length)
            if len(self.body) < length:  # the client closed (or was evicted) mid-body
                self.close_connection = True
                return False
        self.server.connections.serving(self.connection)
        return True

    def _route(self) -> str | None:
        """The request's path without its query, after answering 404 / 405 when not served."""
        path = urllib.parse.urlsplit(self.path).path
        allowed = ALLOWED_METHODS.get(path)
        if allowed is None or self.command not in allowed:
            self.close_connection = True  # a body it may carry is not read
        if allowed is None:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such path {path!r}"})
            return None
        if self.command == "OPTIONS":
            self._send(HTTPStatus.OK, {"allow": list(allowed)}, {"Allow": ", ".join(allowed)})
            return None
        if self.command not in allowed:
            message = f"{path} does not answer {self.command}; allowed: {', '.join(allowed)}"
            headers = {"Allow": ", ".join(allowed)}
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"error": message}, headers)
            return None
        return path

    def do_GET(self) -> None:
        path = self._route()
        if path == READY_PATH:
            self._send_readiness()
        elif path is not None:
            self._send(HTTPStatus.OK, {"status": "ok"} | self.server.service.description)

    def _send_readiness(self) -> None:
        """200 when every model is AVAILABLE at the version the front calls, else 503."""
        readiness = self.server.service.readiness()
        if readiness.ready:
            self._send(HTTPStatus.OK, readiness.as_json())
        else:
            retry = {"Retry-After": RETRY_AFTER_S}
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, readiness.as_json(), retry)

    do_HEAD = do_GET
    do_OPTIONS = do_PUT = do_DELETE = do_PATCH = _route

    def do_POST(self) -> None:
        if self._route() is None:
            return
        service = self.server.service
        if not service.admit():
            message = f"busy: {service.max_pending} requests in service; retry shortly"
            self._send(
                HTTPStatus.SERVICE_UNAVAILABLE, {"error": message}, {"Retry-After": RETRY_AFTER_S}
            )
            return
        try:
            answer = service.recommend(self.body)
        except Exception as error:  # the front answers every failure; it never goes down
            status = _status_of(error)
            if status == HTTPStatus.INTERNAL_SERVER_ERROR:
                LOGGER.exception("recommend failed")
            retry = (
                {"Retry-After": RETRY_AFTER_S} if status == HTTPStatus.SERVICE_UNAVAILABLE else {}
            )
            self._send(status, {"error": f"{type(error).__name__}: {error}"}, retry)
            return
        finally:
            service.release()
        self._send(HTTPStatus.OK, answer)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        """The base class's errors (bad request line, unknown method, ...) as JSON, not HTML."""
        self.close_connection = True
        status = HTTPStatus(code)
        self._send(status, {"error": message or status.phrase})

    def _send(
        self, status: HTTPStatus, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            LOGGER.info("client went away before the answer")

    def log_message(self, format: str, *args: Any) -> None:
        LOGGER.debug("%s " + format, self.address_string(), *args)


class RecommendServer(ThreadingHTTPServer):
    """A threading HTTP server holding the ``RecommendService`` its handlers use.

    At most ``max_connections`` connections are open at once (``ConnectionSlots``: the one
    reading its request longest is evicted for a new one; when all are being answered, new ones
    wait in the listen backlog), and each request line and header block must arrive within
    ``header_timeout_s``.
    """

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        service: RecommendService,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
    ):
        if not 0 < header_timeout_s < math.inf:
            raise ValueError(f"header_timeout_s must be > 0 and finite, got {header_timeout_s}")
        self.connections = ConnectionSlots(max_connections)
        self.header_timeout_s = header_timeout_s
        self._stopping = False
        super().__init__(address, RecommendHandler)
        self.service = service

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        """Starts the connection's thread once it has a slot (``ConnectionSlots.open``)."""
        if self.connections.open(request, lambda: self._stopping):
            super().process_request(request, client_address)
        else:
            self.shutdown_request(request)

    def shutdown_request(self, request: socket.socket) -> None:
        """Closes a connection and frees its slot."""
        self.connections.close(request)
        super().shutdown_request(request)

    def shutdown(self) -> None:
        """Stops ``serve_forever``, also while it waits for a free connection slot."""
        self._stopping = True
        super().shutdown()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that resets its connection is logged at debug level; anything else in full."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            LOGGER.debug("connection from %s reset", client_address)
        else:
            LOGGER.exception("request from %s failed", client_address)


def build_server(
    service: RecommendService,
    host: str,
    port: int,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
) -> RecommendServer:
    """A server bound to ``host:port`` (port 0 picks a free one); call ``serve_forever``.

    ``max_connections`` and ``header_timeout_s`` bound the connections (``RecommendServer``).

    Raises ``OSError`` naming the address when it cannot listen there (e.g. the port is in use).

    Example:
        >>> from dftopk_cascade.serving.export.toy_servables import toy_backend
        >>> batcher = CascadeBatcher(Cascade(toy_backend()))
        >>> service = RecommendService(batcher, DEFAULT_SIZES)
        >>> server = build_server(service, "127.0.0.1", 0)  # port 0: a free one
        >>> server.service is service
        True
        >>> server.server_close(); batcher.close()
    """
    try:
        return RecommendServer((host, port), service, max_connections, header_timeout_s)
    except OSError as error:
        raise OSError(
            error.errno, f"cannot listen on {host}:{port}: {error.strerror or error}"
        ) from error


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dftopk_cascade.serving.server",
        description="HTTP front of the recommender cascade: POST /v1/recommend, GET /healthz "
        "(liveness), GET /readyz (readiness: every model AVAILABLE on the model server).",
    )
    _add_backend_flags(parser)
    add_size_flags(parser, "when a request gives none")
    _add_limit_flags(parser)
    return parser


def _add_backend_flags(parser: argparse.ArgumentParser) -> None:
    """Where the models run and how the front calls them: --export-dir .. --retries."""
    parser.add_argument(
        "--export-dir",
        help="folder written by dftopk_cascade.serving.export (needed by --backend local)",
    )
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0: any)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--backend",
        choices=BACKEND_NAMES,
        default="local",
        help="where the models run: local (SavedModels in this process), rest or grpc (TF "
        "Serving); default local",
    )
    parser.add_argument(
        "--rest-url", default="http://127.0.0.1:8501", help="TF Serving REST address (rest)"
    )
    parser.add_argument(
        "--grpc-target", default="127.0.0.1:8500", help="TF Serving gRPC host:port (grpc)"
    )
    parser.add_argument(
        "--timeout-s",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="deadline of each model call (rest, grpc)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        help="extra attempts when TF Serving is UNAVAILABLE",
    )


def _add_limit_flags(parser: argparse.ArgumentParser) -> None:
    """Bounds on bodies, batches, pending requests and connections."""
    parser.add_argument(
        "--max-requests", type=int, default=64, help="most requests in one POST body"
    )
    add_renamed_flag(
        parser,
        "--max-retrieval-keep",
        "--max-top-n",
        type=int,
        default=2000,
        help="largest retrieval_keep a body may ask",
    )
    parser.add_argument(
        "--max-batch-rows", type=int, default=32, help="most requests run as one batch"
    )
    parser.add_argument(
        "--batch-wait-ms",
        type=float,
        default=1.0,
        help="how long a batch waits for more concurrent requests",
    )
    parser.add_argument(
        "--batch-workers", type=int, default=1, help="threads running batches (2+ for rest/grpc)"
    )
    parser.add_argument(
        "--request-timeout-s",
        type=float,
        default=10.0,
        help="longest a request may wait for its batch before a 504",
    )
    parser.add_argument(
        "--max-pending",
        type=int,
        default=DEFAULT_MAX_PENDING,
        help="most recommend requests in service at once; more get 503 with Retry-After",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        help="most open client connections; at the cap, the one that has been sending its "
        "request longest is closed for a new one (default %(default)s)",
    )
    parser.add_argument(
        "--header-timeout-s",
        type=float,
        default=DEFAULT_HEADER_TIMEOUT_S,
        help="seconds a client has to send a request line and headers, or may idle between "
        "requests on a kept-alive connection (default %(default)s)",
    )


#: flag -> (lowest, highest) a working server can have; both allowed.
FLAG_RANGES: dict[str, tuple[float, float]] = {
    "--port": (0, 65535),
    "--max-requests": (1, 100_000),
    "--max-retrieval-keep": (1, 10_000_000),
    "--max-batch-rows": (1, 100_000),
    "--batch-workers": (1, 256),
    "--max-pending": (1, 100_000),
    "--max-connections": (1, 100_000),
    "--retries": (0, 100),
    "--batch-wait-ms": (0, 10_000),
}
#: flag -> highest a positive, finite duration in seconds can have (the lowest is above 0).
SECONDS_RANGES: dict[str, float] = {
    "--request-timeout-s": 3600,
    "--timeout-s": 3600,
    "--header-timeout-s": 600,
}


def check_server_options(args: argparse.Namespace) -> None:
    """Raises ``ValueError`` naming the first flag that no working server could have.

    Numbers must lie in their ranges (``FLAG_RANGES``, ``SECONDS_RANGES``; NaN and infinity
    never do), and a batch may not wait as long as a request may.

    Example:
        >>> flags = ["--port", "80", "--max-retrieval-keep", "0"]
        >>> check_server_options(_parser().parse_args(flags))
        Traceback (most recent call last):
        ...
        ValueError: --max-retrieval-keep must be between 1 and 10000000, got 0
    """
    for flag, (lowest, highest) in FLAG_RANGES.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if not lowest <= value <= highest:  # False for NaN
            raise ValueError(f"{flag} must be between {lowest} and {highest}, got {value}")
    for flag, highest in SECONDS_RANGES.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if not 0 < value <= highest:
            raise ValueError(f"{flag} must be above 0 and at most {highest} seconds, got {value}")
    if args.batch_wait_ms >= 1000 * args.request_timeout_s:
        raise ValueError(
            f"--batch-wait-ms {args.batch_wait_ms} is not below --request-timeout-s "
            f"{args.request_timeout_s} (in ms): every request would time out"
        )
    check_sizes(args.retrieval_keep, args.prerank_keep, args.rank_keep)
    if args.retrieval_keep > args.max_retrieval_keep:
        raise ValueError(
            f"--retrieval-keep {args.retrieval_keep} is above --max-retrieval-keep "
            f"{args.max_retrieval_keep}: every request that omits retrieval_keep would be refused"
        )
    if args.backend == "local" and not args.export_dir:
        raise ValueError(
            "--backend local needs --export-dir (a folder written by dftopk_cascade.serving.export)"
        )


def main(argv: list[str] | None = None) -> None:
    """Runs the HTTP front until interrupted (see ``--help``).

    Example (``main(["--export-dir", export_dir, "--port", "8080"])`` serves until Ctrl-C; the
    lines below are what it runs, serving in a thread):
        >>> import threading
        >>> from dftopk_cascade.serving.export.toy_servables import toy_cascade_export
        >>> export_dir = toy_cascade_export()  # a folder written by python -m serving.export
        >>> backend = make_backend("local", export_dir=export_dir)
        >>> batcher = CascadeBatcher(Cascade(backend, *DEFAULT_SIZES))
        >>> server = build_server(RecommendService(batcher, DEFAULT_SIZES), "127.0.0.1", 0)
        >>> threading.Thread(target=server.serve_forever, daemon=True).start()
        >>> server.shutdown()
        >>> server.server_close(); batcher.close(); backend.close()
    """
    args = add_entry_flags(_parser()).parse_args(argv)
    check_server_options(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    defaults = CascadeSizes(args.retrieval_keep, args.prerank_keep, args.rank_keep)
    backend = make_backend(
        args.backend,
        export_dir=args.export_dir,
        url=args.rest_url,
        target=args.grpc_target,
        timeout_s=args.timeout_s,
        retries=args.retries,
    )
    cascade = Cascade(backend, *defaults)
    try:
        LOGGER.info("warm-up: %.1f ms", cascade.warm_up().timings_ms["total"])
    except BackendError as error:
        LOGGER.warning("warm-up failed, serving anyway (requests will answer 5xx): %s", error)
    batcher = CascadeBatcher(cascade, args.max_batch_rows, args.batch_wait_ms, args.batch_workers)
    service = RecommendService(
        batcher,
        defaults,
        RequestLimits(max_requests=args.max_requests, max_retrieval_keep=args.max_retrieval_keep),
        args.request_timeout_s,
        {"backend": backend.name, "versions": getattr(backend, "versions", {})},
        args.max_pending,
    )
    server = build_server(
        service, args.host, args.port, args.max_connections, args.header_timeout_s
    )
    LOGGER.info("serving %s on http://%s:%d", RECOMMEND_PATH, *server.server_address[:2])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        LOGGER.info("stopping")
    finally:
        server.server_close()
        batcher.close()
        backend.close()


if __name__ == "__main__":
    run_command(main, "python -m dftopk_cascade.serving.server")
