"""The local, REST and gRPC backends give the same answers; retries, timeouts and errors."""

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.backends import (
    BackendAnswerTooLargeError,
    BackendNotFoundError,
    BackendRequestError,
    BackendRequestTooLargeError,
    BackendTimeoutError,
    BackendUnavailableError,
    GrpcBackend,
    LocalBackend,
    RestBackend,
    make_backend,
)
from dftopk_cascade.serving.backends.base import with_retries
from dftopk_cascade.serving.export.publish import write_version

from tests.serving.stand_in_cascade import DEFAULT_SIZES, build_servables, random_request
from tests.serving.tf_serving_stand_in import TFServingStandIn


@pytest.fixture(scope="module")
def backends(export_dir, tf_serving):
    made = {
        "local": LocalBackend(export_dir),
        "rest": RestBackend(tf_serving.rest_url, retries=2, backoff_s=0.0),
        "grpc": GrpcBackend(tf_serving.grpc_target, retries=2, backoff_s=0.0),
    }
    yield made
    for backend in made.values():
        backend.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _model_inputs(corpus) -> dict[str, dict[str, np.ndarray]]:
    request = random_request(2, seed=11)
    items = corpus[:24].reshape(2, 12, 8)
    mask = np.ones([2, 12], bool)
    mask[0, 9:] = False
    scorer = request | {sig.ITEMS: items, sig.ITEM_MASK: mask, sig.K: np.int32(4)}
    return {
        sig.RETRIEVAL: request | {sig.TOP_N: np.int32(30)},
        sig.PRERANK: scorer,
        sig.RANK: scorer,
    }


@pytest.mark.parametrize("name", sig.MODEL_NAMES)
def test_every_backend_answers_the_same(backends, corpus, name):
    inputs = _model_inputs(corpus)[name]
    answers = {kind: backend.predict(name, inputs) for kind, backend in backends.items()}
    reference = answers["local"]
    assert set(reference) == set(sig.OUTPUT_DTYPES[name])
    for kind in ("rest", "grpc"):
        for output, dtype in sig.OUTPUT_DTYPES[name].items():
            assert answers[kind][output].dtype == dtype.as_numpy_dtype, (kind, output)
            np.testing.assert_allclose(answers[kind][output], reference[output], rtol=1e-6)


@pytest.mark.parametrize("kind", ["local", "rest", "grpc"])
def test_left_out_sizes_take_the_signature_defaults(backends, corpus, kind):
    inputs = _model_inputs(corpus)
    top_n, m, k = DEFAULT_SIZES
    backend = backends[kind]
    retrieved = backend.predict(sig.RETRIEVAL, inputs[sig.RETRIEVAL])
    assert retrieved[sig.ITEM_IDS].shape == (2, 30)
    request = {key: v for key, v in inputs[sig.RETRIEVAL].items() if key != sig.TOP_N}
    assert backend.predict(sig.RETRIEVAL, request)[sig.ITEM_IDS].shape == (2, top_n)
    scorer = {key: v for key, v in inputs[sig.RANK].items() if key != sig.K}
    mask_size = scorer[sig.ITEM_MASK].sum(axis=1)
    for name, default in ((sig.PRERANK, m), (sig.RANK, k)):
        selected = backend.predict(name, scorer)[sig.SELECTED].sum(axis=1)
        np.testing.assert_array_equal(selected, np.minimum(default, mask_size))


def test_local_backend_reports_its_versions(backends):
    assert backends["local"].versions == {name: 1 for name in sig.MODEL_NAMES}


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_unavailable_is_retried(backends, tf_serving, corpus, kind):
    inputs = _model_inputs(corpus)[sig.RANK]
    tf_serving.fail_next(2)
    answer = backends[kind].predict(sig.RANK, inputs)
    np.testing.assert_allclose(
        answer[sig.SCORES], backends["local"].predict(sig.RANK, inputs)[sig.SCORES], rtol=1e-6
    )


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_unavailable_after_every_retry_is_an_error_naming_the_attempts(
    backends, tf_serving, corpus, kind
):
    tf_serving.fail_next(3)
    with pytest.raises(BackendUnavailableError, match="after 3 attempt"):
        backends[kind].predict(sig.RANK, _model_inputs(corpus)[sig.RANK])
    tf_serving.fail_next(0)


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_an_unreachable_server_is_unavailable(kind, corpus):
    address = f"127.0.0.1:{_free_port()}"
    backend = (
        RestBackend(f"http://{address}", retries=1, backoff_s=0.0, timeout_s=2.0)
        if kind == "rest"
        else GrpcBackend(address, retries=1, backoff_s=0.0, timeout_s=2.0)
    )
    with pytest.raises(BackendUnavailableError, match="2 attempt"):
        backend.predict(sig.RANK, _model_inputs(corpus)[sig.RANK])
    backend.close()


@pytest.mark.parametrize("kind", ["local", "rest", "grpc"])
def test_requests_the_server_refuses_are_request_errors(backends, corpus, kind):
    inputs = _model_inputs(corpus)[sig.RANK]
    with pytest.raises(BackendRequestError, match="k must be >= 1"):
        backends[kind].predict(sig.RANK, inputs | {sig.K: np.int32(0)})
    with pytest.raises(BackendRequestError, match="missing"):
        backends[kind].predict(sig.RANK, {sig.K: np.int32(1)})
    with pytest.raises(BackendRequestError, match="shape"):
        backends[kind].predict(sig.RANK, inputs | {sig.ITEMS: np.ones([2, 12], np.int32)})


def _remote(kind: str, tf_serving, **options):
    if kind == "rest":
        return RestBackend(tf_serving.rest_url, backoff_s=0.0, **options)
    return GrpcBackend(tf_serving.grpc_target, backoff_s=0.0, **options)


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_a_version_the_server_does_not_serve_is_not_found_after_the_wait(tf_serving, corpus, kind):
    backend = _remote(kind, tf_serving, versions={sig.RANK: 7}, not_found_wait_s=0.1)
    with pytest.raises(
        BackendNotFoundError, match=r"Servable not found for request: Specific\(rank, 7\)"
    ) as raised:
        backend.predict(sig.RANK, _model_inputs(corpus)[sig.RANK])
    assert isinstance(raised.value, BackendRequestError)
    assert "still not served after" in str(raised.value)
    backend.close()


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_a_loading_model_is_waited_for(backends, tf_serving, corpus, kind):
    inputs = _model_inputs(corpus)[sig.RANK]
    expected = backends["local"].predict(sig.RANK, inputs)[sig.SCORES]
    backend = _remote(kind, tf_serving, not_found_wait_s=30.0)
    backend.predict(sig.RANK, inputs)  # the REST backend reads the signature first
    tf_serving.reload(sig.RANK, 0.3)
    np.testing.assert_allclose(backend.predict(sig.RANK, inputs)[sig.SCORES], expected, rtol=1e-6)
    tf_serving.reload(sig.RANK, 30.0)
    impatient = _remote(kind, tf_serving, not_found_wait_s=0.05)
    try:
        with pytest.raises(BackendNotFoundError, match=r"Latest\(rank\)"):
            impatient.predict(sig.RANK, inputs)
    finally:
        tf_serving.reload(sig.RANK, 0.0)
    backend.close()
    impatient.close()


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_an_overloaded_server_is_retried(backends, tf_serving, corpus, kind):
    inputs = _model_inputs(corpus)[sig.RANK]
    tf_serving.fail_next(2, grpc.StatusCode.RESOURCE_EXHAUSTED)
    np.testing.assert_allclose(
        backends[kind].predict(sig.RANK, inputs)[sig.SCORES],
        backends["local"].predict(sig.RANK, inputs)[sig.SCORES],
        rtol=1e-6,
    )
    tf_serving.fail_next(3, grpc.StatusCode.RESOURCE_EXHAUSTED)
    with pytest.raises(BackendUnavailableError, match=r"HTTP 429|RESOURCE_EXHAUSTED"):
        backends[kind].predict(sig.RANK, inputs)


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_deadline_exceeded_is_a_timeout(backends, tf_serving, corpus, kind):
    tf_serving.fail_next(1, grpc.StatusCode.DEADLINE_EXCEEDED)
    with pytest.raises(BackendTimeoutError, match=r"HTTP 504|DEADLINE_EXCEEDED"):
        backends[kind].predict(sig.RANK, _model_inputs(corpus)[sig.RANK])
    tf_serving.fail_next(0)


def test_the_rest_backend_reads_the_defaults_from_the_served_signature(backends):
    top_n, m, k = DEFAULT_SIZES
    rest = backends["rest"]
    assert rest.signature_defaults(sig.RETRIEVAL) == {sig.TOP_N: top_n}
    assert rest.signature_defaults(sig.PRERANK) == {sig.K: m}
    assert rest.signature_defaults(sig.RANK) == {sig.K: k}


def test_unknown_models_are_named(backends):
    with pytest.raises(BackendRequestError, match="unknown model 'ranker'"):
        backends["rest"].predict("ranker", {})


def test_with_retries_stops_at_other_errors():
    calls = []

    def refuse():
        calls.append(1)
        raise BackendRequestError("bad input")

    with pytest.raises(BackendRequestError):
        with_retries(refuse, retries=3, backoff_s=0.0, description="test")
    assert len(calls) == 1


def test_make_backend_explains_what_is_missing():
    with pytest.raises(ValueError, match="export_dir"):
        make_backend("local")
    with pytest.raises(ValueError, match="url"):
        make_backend("rest")
    with pytest.raises(ValueError, match="target"):
        make_backend("grpc")
    with pytest.raises(ValueError, match="unknown backend 'tfrs'"):
        make_backend("tfrs")


def test_with_retries_waits_a_bounded_time_for_a_model_to_load():
    answers = iter([BackendNotFoundError("loading"), BackendNotFoundError("loading"), 7])

    def load():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert with_retries(load, retries=0, backoff_s=0.0, description="t", not_found_wait_s=5.0) == 7
    calls = []

    def never_loads():
        calls.append(1)
        raise BackendNotFoundError("Servable not found for request: Latest(rank)")

    with pytest.raises(BackendNotFoundError, match=r"Latest\(rank\) \(still not served after"):
        with_retries(never_loads, retries=3, backoff_s=0.0, description="t", not_found_wait_s=0.0)
    assert len(calls) == 1


@pytest.mark.parametrize("kind", ["local", "rest", "grpc"])
@pytest.mark.parametrize("top_n", [7.9, np.float32(7.5), float("nan"), 2**40])
def test_a_size_that_is_not_an_int32_is_refused_not_cut(backends, corpus, kind, top_n):
    inputs = _model_inputs(corpus)[sig.RETRIEVAL] | {sig.TOP_N: top_n}
    with pytest.raises(
        BackendRequestError, match=r"input 'top_n' is not int32: (non-integral|value)"
    ):
        backends[kind].predict(sig.RETRIEVAL, inputs)


@pytest.mark.parametrize("kind", ["local", "rest", "grpc"])
def test_an_integral_float_size_is_served_as_that_int(backends, corpus, kind):
    inputs = _model_inputs(corpus)[sig.RETRIEVAL] | {sig.TOP_N: 7.0}
    assert backends[kind].predict(sig.RETRIEVAL, inputs)[sig.ITEM_IDS].shape == (2, 7)


def test_grpc_retries_only_a_servable_still_loading_among_not_found(tf_serving, corpus):
    backend = GrpcBackend(tf_serving.grpc_target, backoff_s=0.0, not_found_wait_s=30.0)
    calls = tf_serving.core.predict_calls
    tf_serving.fail_next(2, grpc.StatusCode.NOT_FOUND, "Could not find version 3 of model rank")
    try:
        with pytest.raises(BackendRequestError, match="Could not find version 3") as raised:
            backend.predict(sig.RANK, _model_inputs(corpus)[sig.RANK])
    finally:
        tf_serving.fail_next(0)
        backend.close()
    assert not isinstance(raised.value, BackendNotFoundError)
    assert tf_serving.core.predict_calls == calls + 1


def test_grpc_message_size_limits_are_the_requests_fault_and_never_retried(tf_serving, corpus):
    inputs = _model_inputs(corpus)
    backend = GrpcBackend(tf_serving.grpc_target, retries=3, max_message_bytes=2500)
    calls = tf_serving.core.predict_calls
    with pytest.raises(BackendAnswerTooLargeError, match="Received message larger than max"):
        backend.predict(sig.RETRIEVAL, inputs[sig.RETRIEVAL] | {sig.TOP_N: np.int32(60)})
    assert tf_serving.core.predict_calls == calls + 1  # the server answered once; no retry
    big = inputs[sig.RANK] | {sig.ITEMS: np.ones([2, 100, 8], np.int32)}
    big[sig.ITEM_MASK] = np.ones([2, 100], bool)
    with pytest.raises(BackendRequestTooLargeError, match="Sent message larger than max"):
        backend.predict(sig.RANK, big)
    assert tf_serving.core.predict_calls == calls + 1  # refused before sending
    backend.close()


def test_rest_defaults_follow_the_served_version(tmp_path, stand_in_model, corpus):
    """Re-exported with another default top_n, REST uses the new one as gRPC does."""
    root = str(tmp_path)
    first = build_servables(stand_in_model, corpus)[sig.RETRIEVAL]
    write_version(root, sig.RETRIEVAL, 1, first, first.signatures())
    request = random_request(1, seed=4)
    with TFServingStandIn(root) as stand_in:
        rest = RestBackend(stand_in.rest_url, backoff_s=0.0)
        grpc_backend = GrpcBackend(stand_in.grpc_target, backoff_s=0.0)
        try:
            for backend in (rest, grpc_backend):
                assert backend.predict(sig.RETRIEVAL, request)[sig.ITEM_IDS].shape == (1, 40)
            second = build_servables(stand_in_model, corpus, (25, 12, 4))[sig.RETRIEVAL]
            write_version(root, sig.RETRIEVAL, 2, second, second.signatures())
            stand_in.core.poll()  # version 2 served, version 1 unloaded
            for backend in (rest, grpc_backend):
                assert backend.predict(sig.RETRIEVAL, request)[sig.ITEM_IDS].shape == (1, 25)
            assert rest.signature_defaults(sig.RETRIEVAL) == {sig.TOP_N: 25}
        finally:
            rest.close()
            grpc_backend.close()


def test_rest_never_holds_one_models_calls_on_anothers_metadata_read(tf_serving, corpus):
    inputs = _model_inputs(corpus)
    rest = RestBackend(tf_serving.rest_url, backoff_s=0.0, timeout_s=60.0)
    arrived, release = tf_serving.core.hold_metadata(sig.RETRIEVAL)
    request = {key: v for key, v in inputs[sig.RETRIEVAL].items() if key != sig.TOP_N}
    retrieval = threading.Thread(target=rest.predict, args=(sig.RETRIEVAL, request))
    try:
        retrieval.start()
        assert arrived.wait(30.0)  # retrieval's metadata read is under way, held
        scorer = {key: v for key, v in inputs[sig.RANK].items() if key != sig.K}
        ranked = ThreadPoolExecutor(1).submit(rest.predict, sig.RANK, scorer)
        assert ranked.result(timeout=30.0)[sig.SELECTED].shape == (2, 12)
    finally:
        release.set()
        retrieval.join()
        rest.close()
