"""Cascade serving latency and throughput: in process, and over the HTTP front on each backend.

A cascade with the paper's layer sizes (``dftopk_cascade.models.config.CascadeConfig`` defaults: d =
8, towers 128 -> 64 -> 32, DIN pre-ranking, DCN ranking) over a synthetic item corpus (100,000 items
by default) is exported with ``dftopk_cascade.serving.export``; its weights are random, which
changes no cost. Then, each request a different random user with a 50-step history:

1. ``in process``: ``Cascade.recommend`` on the local backend, one request at a time.
2. ``<backend> front, N cl.``: N concurrent clients (1, 8, 64) of ``POST /v1/recommend`` to
   ``python -m dftopk_cascade.serving.server`` (a separate process) for ``--load-seconds``, with the
   ``local`` backend and with the ``rest`` and ``grpc`` backends against the TF Serving stand-in
   (``tests/serving/tf_serving_stand_in.py``; the real server cannot be installed here), which
   runs in a process of its own, as the real server would. Every answer is checked (status 200
   and k items); other answers are errors (503s counted apart), and connections refused, reset
   or closed without an answer are resets.
3. A new version is exported and loaded by a stand-in in this process (replaying its warm-up
   file; ``core.poll()`` picks the version up), and the first ten cascade calls over gRPC are
   timed: the first should not be slower than the tenth beyond noise.

It prints the machine, the sizes, and per scenario the latency p50/p99/mean in ms, requests per
second, errors, 503s and resets.

Usage:
    python -m benchmarks.bench_serving                 # 100,000 items, 20 s per load run
    python -m benchmarks.bench_serving --quick         # 10,000 items, 3 s per load run

Example:
    >>> latency_summary([10.0, 20.0, 30.0], seconds=0.5)["p50"]
    20.0
"""

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import requests
from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.models.cascade import build_cascade
from dftopk_cascade.models.config import CascadeConfig
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.serving.backends import GrpcBackend, LocalBackend
from dftopk_cascade.serving.cascade_inference import Cascade, CascadeSizes, add_size_flags
from dftopk_cascade.serving.export.saved_models import export_cascade
from dftopk_cascade.serving.recommend_api import CONTEXT_LIMITS

from benchmarks.machine import machine_description
from tests.serving.tf_serving_stand_in import TFServingStandIn

#: Table sizes of the non-item id fields, at RecFlow's scale (42K users).
ID_COUNTS = {
    "user_id": 42_000,
    "device_id": 42_000,
    "gender": 3,
    "age": 8,
    "province": 34,
    "author_id": 20_000,
    "category_level_two": 500,
    "category_level_one": 40,
    "upload_type": 12,
}
COLUMNS = {
    fmt.CONTEXT: list(fmt.CONTEXT_FIELDS),
    fmt.USER: list(fmt.USER_FIELDS),
    fmt.SEQ: list(fmt.SEQUENCE_FIELDS),
    fmt.ITEMS: list(fmt.ITEM_FIELDS),
}


def latency_summary(milliseconds: Sequence[float], seconds: float) -> dict[str, float]:
    """p50, p99 and mean latency (ms) of answered requests, and throughput over ``seconds``.

    Example:
        >>> latency_summary([1.0] * 4, seconds=2.0)["per_second"]
        2.0
    """
    if not milliseconds:
        raise ValueError("no request was answered")
    values = np.asarray(milliseconds)
    return {
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "mean": float(values.mean()),
        "per_second": len(values) / seconds,
        "requests": float(len(values)),
    }


def synthetic_config(corpus_size: int) -> CascadeConfig:
    """A cascade config with the default (paper) layer sizes for a corpus of ``corpus_size``.

    Example:
        >>> synthetic_config(1000).vocab_sizes["video_id"]
        1002
    """
    return CascadeConfig(fmt.vocab_sizes(ID_COUNTS | {"video_id": corpus_size}), COLUMNS)


def synthetic_corpus(config: CascadeConfig, size: int, seed: int = 0) -> np.ndarray:
    """int32 [size, 8]: video ids 1..size and random other fields inside their tables.

    Example:
        >>> synthetic_corpus(synthetic_config(10), 10)[:, 0].tolist()
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    """
    rng = np.random.default_rng(seed)
    columns = [np.arange(1, size + 1)]
    for field in config.columns[fmt.ITEMS][1:]:
        columns.append(rng.integers(1, config.vocab_sizes[field] - 1, size=size))
    return np.stack(columns, axis=1).astype(np.int32)


def random_bodies(count: int, corpus: np.ndarray, seed: int = 1) -> list[dict]:
    """``count`` recommend requests (raw RecFlow ids): random users, 50 behaviours from the corpus.

    Example:
        >>> sorted(random_bodies(1, np.ones([3, 8], np.int32))[0])
        ['context', 'history', 'user']
    """
    rng = np.random.default_rng(seed)
    bodies = []
    for _ in range(count):
        viewed = corpus[rng.integers(0, len(corpus), size=fmt.SEQUENCE_LENGTH), :5] - 1
        bodies.append(
            {
                "user": [int(rng.integers(0, ID_COUNTS[field])) for field in fmt.USER_FIELDS],
                "context": [int(rng.integers(0, top + 1)) for _, top in CONTEXT_LIMITS],
                "history": viewed.tolist(),
            }
        )
    return bodies


def _contract_request(body: dict) -> dict[str, np.ndarray]:
    history = np.asarray(body["history"], np.int32) + 1
    return {
        fmt.CONTEXT: np.asarray([body["context"]], np.int32) + 1,
        fmt.USER: np.asarray([body["user"]], np.int32) + 1,
        fmt.SEQ: history[None],
        fmt.SEQ_MASK: np.ones([1, len(history)], bool),
    }


def time_sequential(call: Callable[[dict], None], bodies: Sequence[dict]) -> dict[str, float]:
    """Latency of ``call(body)`` for each body, one after another.

    Example:
        >>> time_sequential(lambda body: None, [{}] * 3)["requests"]
        3.0
    """
    latencies = []
    started = time.perf_counter()
    for body in bodies:
        start = time.perf_counter()
        call(body)
        latencies.append(1000.0 * (time.perf_counter() - start))
    return latency_summary(latencies, time.perf_counter() - started)


def time_concurrent(
    url: str, bodies: Sequence[dict], clients: int, seconds: float, k: int
) -> dict[str, float]:
    """``clients`` threads posting ``bodies`` in turn for ``seconds``: the latency summary of the
    answered requests (200 with k items) and the counts of ``errors`` (any other answer, ``busy``
    of them 503s) and ``resets`` (connections refused, reset or closed without an answer).

    Example:
        >>> summary = time_concurrent("http://127.0.0.1:8080", bodies, 8, 30.0, k=10)
    """
    latencies: list[float] = []
    counts = {"errors": 0, "busy": 0, "resets": 0}
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        session = requests.Session()
        sent = index
        while time.perf_counter() < deadline:
            body = {"requests": [bodies[sent % len(bodies)]]}
            start = time.perf_counter()
            try:
                response = session.post(url + "/v1/recommend", json=body, timeout=60)
            except requests.ConnectionError:
                with lock:
                    counts["resets"] += 1
                session.close()
                session = requests.Session()
                sent += clients
                continue
            elapsed = 1000.0 * (time.perf_counter() - start)
            ok = response.status_code == 200 and len(response.json()["results"][0]["item_ids"]) == k
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    counts["errors"] += 1
                    counts["busy"] += response.status_code == 503
            sent += clients
        session.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if not latencies:
        return {"requests": 0.0, "per_second": 0.0} | {key: float(v) for key, v in counts.items()}
    return latency_summary(latencies, elapsed) | {key: float(v) for key, v in counts.items()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StandInProcess:
    """The TF Serving stand-in in a process of its own (``python -m
    tests.serving.tf_serving_stand_in``), with its ``rest_url`` and ``grpc_target``.

    Example::

        with StandInProcess("/tmp/export") as stand_in:
            backend_flags("grpc", "/tmp/export", stand_in)
    """

    def __init__(self, export_dir: str, start_timeout_s: float = 120.0) -> None:
        self._folder = tempfile.TemporaryDirectory()
        ready_file = f"{self._folder.name}/addresses.json"
        command = [sys.executable, "-m", "tests.serving.tf_serving_stand_in"]
        command += ["--export-dir", export_dir, "--ready-file", ready_file]
        self._process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + start_timeout_s
        while not os.path.exists(ready_file):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the TF Serving stand-in's process did not start")
            time.sleep(0.1)
        with open(ready_file) as file:
            addresses = json.load(file)
        self.rest_url: str = addresses["rest_url"]
        self.grpc_target: str = addresses["grpc_target"]

    def close(self) -> None:
        """Stops the process and removes its folder."""
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=30)
        self._folder.cleanup()

    def __enter__(self) -> "StandInProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def backend_flags(kind: str, export_dir: str, stand_in: "StandInProcess | None") -> list[str]:
    """The front's flags for a backend: ``local`` over ``export_dir``, ``rest`` and ``grpc``
    against the TF Serving stand-in (with 2 batch workers, to overlap the network waits).

    Example:
        >>> backend_flags("local", "/tmp/export", None)
        ['--backend', 'local', '--export-dir', '/tmp/export']
    """
    if kind == "local":
        return ["--backend", "local", "--export-dir", export_dir]
    if kind == "rest":
        return ["--backend", "rest", "--rest-url", stand_in.rest_url, "--batch-workers", "2"]
    return ["--backend", "grpc", "--grpc-target", stand_in.grpc_target, "--batch-workers", "2"]


def start_front(retrieval_keep: int, prerank_keep: int, rank_keep: int, extra: Sequence[str]):
    """Starts ``python -m dftopk_cascade.serving.server`` on a free 127.0.0.1 port; returns
    (process, url).

    Example:
        >>> process, url = start_front(200, 50, 10, ["--export-dir", "/tmp/export"])
    """
    port = _free_port()
    command = [sys.executable, "-m", "dftopk_cascade.serving.server"]
    command += ["--port", str(port), "--retrieval-keep", str(retrieval_keep)]
    command += ["--prerank-keep", str(prerank_keep), "--rank-keep", str(rank_keep)]
    process = subprocess.Popen([*command, *extra], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"the HTTP front exited with code {process.returncode}")
        try:
            requests.get(url + "/healthz", timeout=1)
            return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("the HTTP front did not answer /healthz within 60 s")


def first_calls_after_a_new_version(
    model, corpus: np.ndarray, export_dir: str, stand_in: TFServingStandIn, bodies, sizes
) -> list[float]:
    """Exports a new version, lets the stand-in load it (replaying its warm-up file), and times
    the first 10 cascade calls over gRPC (ms).

    Example:
        >>> first_calls_after_a_new_version(model, corpus, export_dir, stand_in, bodies, sizes)
    """
    export_cascade(model, corpus, export_dir, sizes=sizes)
    stand_in.core.poll()
    backend = GrpcBackend(stand_in.grpc_target)
    try:
        cascade = Cascade(backend, *sizes)
        return time_each(cascade.recommend, [_contract_request(body) for body in bodies[:10]])
    finally:
        backend.close()


def time_each(call: Callable[[dict], object], bodies: Sequence[dict]) -> list[float]:
    """Milliseconds of ``call(body)`` for each body, in order.

    Example:
        >>> len(time_each(lambda body: None, [{}] * 3))
        3
    """
    latencies = []
    for body in bodies:
        start = time.perf_counter()
        call(body)
        latencies.append(1000.0 * (time.perf_counter() - start))
    return latencies


def print_table(results: dict[str, dict[str, float]]) -> None:
    """One line per scenario: p50, p99, mean (ms), requests per second, errors, 503s, resets.

    Example:
        >>> print_table({"local": latency_summary([1.0, 2.0], seconds=1.0)})
        scenario               p50 ms   p99 ms  mean ms    req/s errors   503 resets
        local                     1.5      2.0      1.5      2.0      0     0      0
    """
    print(
        f"{'scenario':<20} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'req/s':>8} "
        f"{'errors':>6} {'503':>5} {'resets':>6}"
    )
    for name, summary in results.items():
        p50, p99, mean = (summary.get(key, float("nan")) for key in ("p50", "p99", "mean"))
        print(
            f"{name:<20} {p50:8.1f} {p99:8.1f} {mean:8.1f} {summary['per_second']:8.1f} "
            f"{int(summary.get('errors', 0)):6d} {int(summary.get('busy', 0)):5d} "
            f"{int(summary.get('resets', 0)):6d}"
        )


def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Exports the synthetic cascade and times the scenarios; prints and returns them.

    Example:
        >>> results = run(_parser().parse_args(["--quick"]))
    """
    config = synthetic_config(args.corpus_size)
    model = build_cascade(config)
    corpus = synthetic_corpus(config, args.corpus_size)
    bodies = random_bodies(max(args.requests, 64), corpus)
    sizes = CascadeSizes(args.retrieval_keep, args.prerank_keep, args.rank_keep)
    print(machine_description())
    print(
        f"corpus {args.corpus_size:,} items, keep {args.retrieval_keep} -> {args.prerank_keep} "
        f"-> {args.rank_keep}; "
        f"{model.count_params():,} parameters; {args.requests} sequential requests in process; "
        f"the front over {', '.join(args.backends)} at {args.clients} clients, "
        f"{args.load_seconds:g} s each"
    )
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as export_dir:
        started = time.perf_counter()
        export_cascade(model, corpus, export_dir, sizes=sizes)
        print(f"export: {time.perf_counter() - started:.1f} s")

        backend = LocalBackend(export_dir)
        cascade = Cascade(backend, *sizes)
        cascade.warm_up()
        requests_ = [_contract_request(body) for body in bodies[: args.requests]]
        results["in process"] = time_sequential(cascade.recommend, requests_)
        backend.close()

        extra = ["--max-batch-rows", str(args.max_batch_rows)]
        extra += ["--batch-wait-ms", str(args.batch_wait_ms)]
        remote = {"rest", "grpc"} & set(args.backends)
        with StandInProcess(export_dir) if remote else contextlib.nullcontext() as stand_in:
            for kind in args.backends:
                flags = backend_flags(kind, export_dir, stand_in)
                process, url = start_front(*sizes, [*flags, *extra])
                try:
                    for clients in args.clients:
                        results[f"{kind} front, {clients} cl."] = time_concurrent(
                            url, bodies, clients, args.load_seconds, args.rank_keep
                        )
                finally:
                    process.terminate()
                    process.wait(timeout=30)
        with TFServingStandIn(export_dir) as stand_in:
            first = first_calls_after_a_new_version(
                model, corpus, export_dir, stand_in, bodies, sizes
            )
    print_table(results)
    print(
        "gRPC cascade calls after a new version was loaded (warm-up replayed), ms: first "
        f"{first[0]:.1f}, tenth {first[-1]:.1f}, median of ten {statistics.median(first):.1f}"
    )
    results["after a new version"] = {"first": first[0], "tenth": first[-1]}
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"machine": machine_description(), "results": results}, file, indent=2)
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_serving",
        description="Cascade serving latency (p50/p99) and throughput, local and over HTTP.",
    )
    parser.add_argument("--corpus-size", type=int, default=100_000, help="items in the corpus")
    add_size_flags(parser, "in every request")
    parser.add_argument("--requests", type=int, default=300, help="sequential requests timed")
    parser.add_argument(
        "--clients",
        type=int,
        nargs="+",
        default=[1, 8, 64],
        help="concurrent HTTP clients of each load run (default 1 8 64)",
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=("local", "rest", "grpc"),
        default=["local", "rest", "grpc"],
        help="the front's backends timed (rest and grpc against the TF Serving stand-in)",
    )
    parser.add_argument(
        "--load-seconds", type=float, default=20.0, help="duration of each load run"
    )
    parser.add_argument(
        "--max-batch-rows", type=int, default=32, help="the front's micro-batch size limit"
    )
    parser.add_argument(
        "--batch-wait-ms", type=float, default=1.0, help="the front's micro-batch wait"
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run: 10,000 items, 50 sequential requests, 3 s per load run",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Runs the benchmark (see ``--help``).

    Example:
        >>> main(["--quick"])
    """
    args = add_entry_flags(_parser()).parse_args(argv)
    if args.quick:
        args.corpus_size, args.requests, args.load_seconds = 10_000, 50, 3.0
    return run(args)


if __name__ == "__main__":
    run_command(main, "python -m benchmarks.bench_serving")
