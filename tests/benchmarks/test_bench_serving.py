"""The serving benchmark's pieces: summaries, the synthetic cascade inputs, valid request bodies."""

import http.server
import json
import socket
import threading
from types import SimpleNamespace

import numpy as np
import pytest
from dftopk_cascade.serving.cascade_inference import CascadeSizes
from dftopk_cascade.serving.recommend_api import parse_recommend_body

from benchmarks import bench_serving


def test_latency_summary_uses_numpy_percentiles():
    values = list(np.random.default_rng(0).exponential(10.0, size=1000))
    summary = bench_serving.latency_summary(values, seconds=4.0)
    assert summary["p50"] == pytest.approx(np.percentile(values, 50))
    assert summary["p99"] == pytest.approx(np.percentile(values, 99))
    assert summary["per_second"] == 250.0 and summary["requests"] == 1000.0
    with pytest.raises(ValueError, match="no request"):
        bench_serving.latency_summary([], seconds=1.0)


def test_synthetic_corpus_fits_the_config_vocabulary():
    config = bench_serving.synthetic_config(500)
    corpus = bench_serving.synthetic_corpus(config, 500)
    assert corpus.shape == (500, 8) and corpus.dtype == np.int32
    sizes = np.asarray([config.vocab_sizes[field] for field in config.columns["items"]])
    assert (corpus >= 1).all() and (corpus < sizes - 1).all()
    np.testing.assert_array_equal(corpus[:, 0], np.arange(1, 501))


def test_random_bodies_are_valid_recommend_requests():
    config = bench_serving.synthetic_config(100)
    corpus = bench_serving.synthetic_corpus(config, 100)
    bodies = bench_serving.random_bodies(3, corpus)
    call = parse_recommend_body(json.dumps({"requests": bodies}).encode(), CascadeSizes(20, 10, 5))
    assert call.batch_size == 3 and call.features["seq_mask"].all()
    request = bench_serving._contract_request(bodies[0])
    np.testing.assert_array_equal(request["seq"], call.features["seq"][:1])
    np.testing.assert_array_equal(request["user"], call.features["user"][:1])


def test_time_sequential_times_every_call():
    calls = []
    summary = bench_serving.time_sequential(calls.append, [{"a": 1}] * 5)
    assert len(calls) == 5 and summary["requests"] == 5.0 and summary["p50"] >= 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_time_concurrent_counts_resets_instead_of_failing():
    summary = bench_serving.time_concurrent(
        f"http://127.0.0.1:{_free_port()}", [{}], clients=2, seconds=0.3, k=10
    )
    assert summary["requests"] == 0.0 and summary["resets"] >= 2.0
    assert summary["errors"] == 0.0


def test_time_concurrent_counts_503s_as_errors():
    class Busy(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        summary = bench_serving.time_concurrent(url, [{}], clients=2, seconds=0.3, k=10)
    finally:
        server.shutdown()
        server.server_close()
    assert summary["errors"] >= 2.0 and summary["busy"] == summary["errors"]
    assert summary["resets"] == 0.0


def test_backend_flags_point_the_front_at_the_stand_in():
    stand_in = SimpleNamespace(rest_url="http://127.0.0.1:9", grpc_target="127.0.0.1:9")
    assert bench_serving.backend_flags("rest", "/x", stand_in)[:3] == [
        "--backend",
        "rest",
        "--rest-url",
    ]
    assert "127.0.0.1:9" in bench_serving.backend_flags("grpc", "/x", stand_in)
    assert bench_serving.backend_flags("local", "/x", stand_in)[-1] == "/x"


def test_print_table_shows_errors_503s_and_resets(capsys):
    summary = bench_serving.latency_summary([1.0, 2.0], seconds=1.0)
    bench_serving.print_table({"grpc front, 64 cl.": summary | {"errors": 3.0, "busy": 2.0}})
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[-3:] == ["errors", "503", "resets"]
    assert row.split()[-3:] == ["3", "2", "0"]


def test_a_small_run_times_every_scenario_without_errors(tmp_path):
    """The whole benchmark, end to end, on a small corpus: every scenario timed, none failing."""
    json_path = tmp_path / "serving.json"
    results = bench_serving.main(
        ["--corpus-size", "500", "--requests", "3", "--clients", "1", "--backends", "local",
         "grpc", "--load-seconds", "0.5", "--retrieval-keep", "20", "--prerank-keep", "10",
         "--rank-keep", "5", "--json", str(json_path)]
    )  # fmt: skip
    fronts = ["local front, 1 cl.", "grpc front, 1 cl."]
    assert set(results) == {"in process", *fronts, "after a new version"}
    for front in fronts:  # grpc: against the stand-in in its own process
        assert results[front]["errors"] == results[front]["resets"] == 0
    assert json.loads(json_path.read_text())["results"].keys() == results.keys()
