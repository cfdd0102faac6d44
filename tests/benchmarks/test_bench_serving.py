"""The serving benchmark's pieces: summaries, the synthetic cascade inputs, valid request bodies."""

import json

import numpy as np
import pytest

from benchmarks import bench_serving
from serving.cascade_inference import CascadeSizes
from serving.recommend_api import parse_recommend_body


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
