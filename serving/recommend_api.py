"""The JSON API of ``POST /v1/recommend``: request validation and the answer's layout.

Request body (ids are RecFlow's own, unshifted; this module adds the contract's + 1)::

    {"requests": [{"user": [user_id, device_id, gender, age, province],
                   "context": [weekday (0 = Monday), hour, minute],
                   "history": [[video_id, author_id, category_level_two,
                                category_level_one, upload_type], ...]}],
     "retrieval_keep": 200, "prerank_keep": 50, "rank_keep": 10}

``history`` lists past effective views oldest first (the newest 50 are used; it may be empty or
left out); ``retrieval_keep``, ``prerank_keep``, ``rank_keep`` are optional (their earlier names
``top_n``, ``m``, ``k`` are still accepted, deprecated; a body may not give both names). Ids the
model has never seen (any integer >= 0) are served through the out-of-vocabulary bucket. Answer::

    {"results": [{"item_ids": [...], "video_ids": [...], "scores": [...]}],
     "sizes": {"retrieval_keep": 200, "prerank_keep": 50, "rank_keep": 10},
     "timings_ms": {"retrieval": ..., ...}}

with ``item_ids`` the corpus rows and ``video_ids`` the RecFlow video ids, best first.

Example:
    >>> call = parse_recommend_body(b'{"requests": [{"user": [1, 2, 0, 3, 4],'
    ...                             b' "context": [0, 13, 5]}]}', CascadeSizes(200, 50, 10))
    >>> call.features["user"].tolist(), call.sizes
    ([[2, 3, 1, 4, 5]], (200, 50, 10))
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.cascade_inference import CascadeResult, CascadeSizes, check_sizes

#: Largest raw id: with the + 1 shift it must still fit int32 (larger ids are clamped to it and
#: served through the out-of-vocabulary bucket).
MAX_RAW_ID = np.iinfo(np.int32).max - 1
#: The body's size fields (``CascadeSizes``' names).
SIZE_FIELDS: tuple[str, ...] = CascadeSizes._fields
#: Each size field's earlier, deprecated name, still accepted.
OLD_SIZE_FIELDS: dict[str, str] = {"retrieval_keep": "top_n", "prerank_keep": "m", "rank_keep": "k"}
#: Allowed ranges of the raw context values.
CONTEXT_LIMITS = (("weekday", 6), ("hour", 23), ("minute", 59))


class RequestError(ValueError):
    """A recommend request that cannot be served as sent (HTTP 400); the message says why."""


@dataclass(frozen=True)
class RequestLimits:
    """What one ``POST /v1/recommend`` may ask for.

    Attributes:
        max_requests: requests per body.
        max_retrieval_keep: largest ``retrieval_keep``.
        max_body_bytes: largest body.

    Example:
        >>> RequestLimits(max_requests=8).max_retrieval_keep
        2000
        >>> RequestLimits(max_requests=0)
        Traceback (most recent call last):
        ...
        ValueError: request limits must be integers >= 1, got {'max_requests': 0}
    """

    max_requests: int = 64
    max_retrieval_keep: int = 2000
    max_body_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        bad = {
            name: value for name, value in self.__dict__.items() if not _is_int(value) or value < 1
        }
        if bad:
            raise ValueError(f"request limits must be integers >= 1, got {bad}")


@dataclass(frozen=True)
class RecommendCall:
    """A validated body: contract features [B, ...] and the cascade sizes (``CascadeSizes``).

    Example:
        >>> body = b'{"requests": [{"user": [1, 2, 0, 3, 4], "context": [0, 13, 5]}]}'
        >>> call = parse_recommend_body(body, CascadeSizes(200, 50, 10))
        >>> call.features["seq"].shape
        (1, 50, 5)
    """

    features: dict[str, np.ndarray]
    sizes: tuple[int, int, int]

    @property
    def batch_size(self) -> int:
        """Number of requests B.

        Example:
            >>> body = b'{"requests": [{"user": [1, 2, 0, 3, 4], "context": [0, 13, 5]}]}'
            >>> call = parse_recommend_body(body, CascadeSizes(200, 50, 10))
            >>> call.batch_size
            1
        """
        return int(self.features[sig.USER].shape[0])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _raw_ids(value: Any, width: int, where: str) -> list[int]:
    if not isinstance(value, list) or len(value) != width or not all(map(_is_int, value)):
        raise RequestError(f"{where} must be a list of {width} integers, got {value!r:.80}")
    if any(item < 0 for item in value):
        raise RequestError(f"{where} must hold ids >= 0, got {value!r:.80}")
    return [min(item, MAX_RAW_ID) + 1 for item in value]


def _context(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or len(value) != len(CONTEXT_LIMITS):
        raise RequestError(f"{where} must be [weekday, hour, minute], got {value!r:.80}")
    for item, (name, largest) in zip(value, CONTEXT_LIMITS, strict=True):
        if not _is_int(item) or not 0 <= item <= largest:
            raise RequestError(
                f"{where}: {name} must be an integer in [0, {largest}], got {item!r}"
            )
    return [item + 1 for item in value]


def _history(value: Any, where: str) -> np.ndarray:
    if not isinstance(value, list):
        raise RequestError(f"{where} must be a list of behaviours, got {type(value).__name__}")
    seq = np.zeros((sig.SEQUENCE_LENGTH, sig.SEQUENCE_WIDTH), np.int32)
    newest = value[-sig.SEQUENCE_LENGTH :]
    for index, behaviour in enumerate(newest):
        row = sig.SEQUENCE_LENGTH - len(newest) + index
        seq[row] = _raw_ids(behaviour, sig.SEQUENCE_WIDTH, f"{where}[{index}]")
    return seq


def _size(body: Mapping[str, Any], name: str, default: int) -> int:
    old = OLD_SIZE_FIELDS[name]
    if name in body and old in body:
        raise RequestError(f"give {name} only ({old} is its deprecated name), not both")
    value = body.get(name, body.get(old, default))
    if not _is_int(value) or value < 1:
        raise RequestError(f"{name} must be an integer >= 1, got {value!r:.80}")
    return value


def parse_recommend_body(
    body: bytes, defaults: CascadeSizes, limits: RequestLimits = RequestLimits()
) -> RecommendCall:
    """Validates a ``POST /v1/recommend`` body; raises ``RequestError`` naming the problem.

    Example:
        >>> parse_recommend_body(b'{"requests": []}', CascadeSizes(200, 50, 10))
        Traceback (most recent call last):
        ...
        dftopk_cascade.serving.recommend_api.RequestError: requests must be a non-empty list of
        request objects
    """
    if len(body) > limits.max_body_bytes:
        raise RequestError(f"the body has {len(body)} bytes, more than {limits.max_body_bytes}")
    try:
        parsed = json.loads(body)
    except ValueError as error:  # bad JSON or UTF-8, or an integer of more than 4,300 digits
        raise RequestError(f"the body is not valid JSON: {error!s:.200}") from None
    except RecursionError:
        raise RequestError("the body is not valid JSON: nested too deeply") from None
    if not isinstance(parsed, dict):
        raise RequestError("the body must be a JSON object with a 'requests' list")
    unknown = sorted(set(parsed) - {"requests", *SIZE_FIELDS, *OLD_SIZE_FIELDS.values()})
    if unknown:
        raise RequestError(f"unknown fields {unknown}; allowed: requests, {', '.join(SIZE_FIELDS)}")
    requests = parsed.get("requests")
    if not isinstance(requests, list) or not requests:
        raise RequestError("requests must be a non-empty list of request objects")
    if len(requests) > limits.max_requests:
        raise RequestError(
            f"{len(requests)} requests in one body, more than the limit {limits.max_requests}"
        )
    sizes = tuple(_size(parsed, name, default) for name, default in defaults._asdict().items())
    if sizes[0] > limits.max_retrieval_keep:
        raise RequestError(f"retrieval_keep must be <= {limits.max_retrieval_keep}, got {sizes[0]}")
    try:
        check_sizes(*sizes)
    except ValueError as error:
        raise RequestError(str(error)) from None

    users, contexts, seqs = [], [], []
    for index, request in enumerate(requests):
        where = f"requests[{index}]"
        if not isinstance(request, dict):
            raise RequestError(f"{where} must be an object with user, context and history")
        missing = sorted({"user", "context"} - set(request))
        unknown = sorted(set(request) - {"user", "context", "history"})
        if missing or unknown:
            raise RequestError(
                f"{where}: missing fields {missing}, unknown fields {unknown} "
                "(expected user, context and optionally history)"
            )
        users.append(_raw_ids(request["user"], sig.USER_WIDTH, f"{where}.user"))
        contexts.append(_context(request["context"], f"{where}.context"))
        seqs.append(_history(request.get("history", []), f"{where}.history"))
    seq = np.stack(seqs)
    features = {
        sig.CONTEXT: np.asarray(contexts, np.int32),
        sig.USER: np.asarray(users, np.int32),
        sig.SEQ: seq,
        sig.SEQ_MASK: np.any(seq != 0, axis=-1),
    }
    return RecommendCall(features, sizes)


def recommend_answer(result: CascadeResult, sizes: tuple[int, int, int]) -> dict[str, Any]:
    """The JSON answer for a cascade result (see the module docstring).

    Example:
        >>> ranked = np.arange(10, dtype=np.int32)[None]  # corpus rows, best first
        >>> result = CascadeResult(ranked, np.ones([1, 10, 8], np.int32),
        ...                        np.zeros([1, 10], np.float32), {"total": 1.5})
        >>> answer = recommend_answer(result, (200, 50, 10))
        >>> len(answer["results"][0]["video_ids"]), answer["sizes"]
        (10, {'retrieval_keep': 200, 'prerank_keep': 50, 'rank_keep': 10})
    """
    video_ids = result.item_features[..., 0].astype(np.int64) - 1
    return {
        "results": [
            {
                "item_ids": result.item_ids[row].tolist(),
                "video_ids": video_ids[row].tolist(),
                "scores": result.scores[row].tolist(),
            }
            for row in range(result.item_ids.shape[0])
        ],
        "sizes": dict(zip(CascadeSizes._fields, sizes, strict=True)),
        "timings_ms": {name: round(value, 3) for name, value in result.timings_ms.items()},
    }
