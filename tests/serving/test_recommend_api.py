"""Validation of ``POST /v1/recommend`` bodies: what is served, and each refusal's message."""

import json

import numpy as np
import pytest
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.cascade_inference import CascadeResult, CascadeSizes
from dftopk_cascade.serving.recommend_api import (
    MAX_RAW_ID,
    RequestError,
    RequestLimits,
    parse_recommend_body,
    recommend_answer,
)

DEFAULTS = CascadeSizes(retrieval_keep=100, prerank_keep=20, rank_keep=5)
LIMITS = RequestLimits()
REQUEST = {"user": [7, 1, 0, 3, 2], "context": [6, 23, 59], "history": [[4, 5, 6, 7, 1]]}


def _parse(body, limits=LIMITS):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_recommend_body(data, DEFAULTS, limits)


def test_ids_are_shifted_and_history_is_left_padded_newest_last():
    history = [[index, index, 1, 2, 0] for index in range(60)]
    call = _parse({"requests": [REQUEST, REQUEST | {"history": history}], "k": 3})
    assert call.sizes == (100, 20, 3)
    assert call.batch_size == 2
    np.testing.assert_array_equal(call.features[sig.USER][0], [8, 2, 1, 4, 3])
    np.testing.assert_array_equal(call.features[sig.CONTEXT][0], [7, 24, 60])
    seq, mask = call.features[sig.SEQ], call.features[sig.SEQ_MASK]
    np.testing.assert_array_equal(seq[0, -1], [5, 6, 7, 8, 2])
    assert not seq[0, :-1].any() and mask[0].tolist() == [False] * 49 + [True]
    np.testing.assert_array_equal(seq[1, :, 0], np.arange(10, 60) + 1)
    assert mask[1].all()
    for name, spec in sig.REQUEST_SPECS.items():
        assert call.features[name].dtype == spec.dtype.as_numpy_dtype
        assert spec.shape.is_compatible_with(call.features[name].shape)


def test_unknown_ids_and_an_empty_history_are_accepted():
    call = _parse({"requests": [{"user": [10**12, 0, 0, 0, 0], "context": [0, 0, 0]}]})
    assert call.features[sig.USER][0, 0] == MAX_RAW_ID + 1
    assert not call.features[sig.SEQ_MASK].any()
    assert _parse({"requests": [REQUEST | {"history": []}]}).features[sig.SEQ].sum() == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ([REQUEST], "must be a JSON object"),
        ({}, "requests must be a non-empty list"),
        ({"requests": []}, "requests must be a non-empty list"),
        ({"requests": [REQUEST], "n": 5}, r"unknown fields \['n'\]"),
        ({"requests": ["user"]}, r"requests\[0\] must be an object"),
        ({"requests": [{"user": [1] * 5}]}, r"missing fields \['context'\]"),
        ({"requests": [REQUEST | {"age": 3}]}, r"unknown fields \['age'\]"),
        ({"requests": [REQUEST | {"user": [1, 2, 3]}]}, "user must be a list of 5 integers"),
        ({"requests": [REQUEST | {"user": "u1"}]}, "user must be a list of 5 integers"),
        ({"requests": [REQUEST | {"user": [1.5, 2, 3, 4, 5]}]}, "list of 5 integers"),
        ({"requests": [REQUEST | {"user": [True, 2, 3, 4, 5]}]}, "list of 5 integers"),
        ({"requests": [REQUEST | {"user": [-1, 2, 3, 4, 5]}]}, "ids >= 0"),
        ({"requests": [REQUEST | {"context": [7, 0, 0]}]}, r"weekday must be .* \[0, 6\]"),
        ({"requests": [REQUEST | {"context": [0, "12", 0]}]}, "hour must be an integer"),
        ({"requests": [REQUEST | {"context": [0, 0]}]}, r"\[weekday, hour, minute\]"),
        ({"requests": [REQUEST | {"history": {"a": 1}}]}, "history must be a list"),
        ({"requests": [REQUEST | {"history": [[1, 2]]}]}, r"history\[0\] must be a list of 5"),
        ({"requests": [REQUEST], "rank_keep": 0}, "rank_keep must be an integer >= 1"),
        ({"requests": [REQUEST], "k": 0}, "rank_keep must be an integer >= 1"),
        ({"requests": [REQUEST], "retrieval_keep": "10"}, "retrieval_keep must be an integer"),
        ({"requests": [REQUEST], "retrieval_keep": 10, "prerank_keep": 20}, "<= retrieval_keep"),
        ({"requests": [REQUEST], "retrieval_keep": 5000}, "retrieval_keep must be <= 2000"),
        ({"requests": [REQUEST], "top_n": 10, "retrieval_keep": 10}, "give retrieval_keep only"),
        ({"requests": [REQUEST] * 65}, "65 requests in one body, more than the limit 64"),
    ],
)
def test_bad_bodies_are_refused_with_a_message(body, message):
    with pytest.raises(RequestError, match=message):
        _parse(body)


def test_oversized_bodies_are_refused():
    with pytest.raises(RequestError, match="more than 100"):
        _parse({"requests": [REQUEST] * 3}, RequestLimits(max_body_bytes=100))


def test_the_answer_lists_each_requests_items_best_first():
    result = CascadeResult(
        item_ids=np.array([[4, 2], [0, 1]], np.int32),
        item_features=np.array([[[11] * 8, [3] * 8], [[1] * 8, [8] * 8]], np.int32),
        scores=np.array([[0.5, 0.25], [2.0, 1.0]], np.float32),
        timings_ms={"retrieval": 1.23456, "total": 2.0},
    )
    answer = recommend_answer(result, (100, 20, 2))
    assert answer == {
        "results": [
            {"item_ids": [4, 2], "video_ids": [10, 2], "scores": [0.5, 0.25]},
            {"item_ids": [0, 1], "video_ids": [0, 7], "scores": [2.0, 1.0]},
        ],
        "sizes": {"retrieval_keep": 100, "prerank_keep": 20, "rank_keep": 2},
        "timings_ms": {"retrieval": 1.235, "total": 2.0},
    }
    json.dumps(answer)


def test_the_old_size_fields_are_still_accepted() -> None:
    body = json.dumps({"requests": [REQUEST], "top_n": 50, "m": 10, "k": 3}).encode()
    assert parse_recommend_body(body, DEFAULTS).sizes == (50, 10, 3)
