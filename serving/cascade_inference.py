"""Cascade inference: retrieval top-N -> pre-ranking to M -> ranking to K, over any backend.

Each stage is one call of an exported model (``serving.signatures``). Retrieval returns the
request's N best corpus items; pre-ranking scores them and its exact top-k mask (``k`` = M)
keeps M; ranking scores those and keeps K. The kept items of a stage are its ``selected`` items
ordered by its scores (ties: lower position first, as ``tf.math.top_k``).

Example:
    >>> from serving.backends import LocalBackend
    >>> from serving.export.toy_servables import toy_cascade_export, toy_request
    >>> cascade = Cascade(LocalBackend(toy_cascade_export()), top_n=200, m=50, k=10)
    >>> result = cascade.recommend(toy_request())    # request: context, user, seq, seq_mask
    >>> result.item_ids.shape, sorted(result.timings_ms)
    ((1, 10), ['prerank', 'rank', 'retrieval', 'total'])
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from serving import signatures as sig
from serving.backends.base import PredictBackend


class CascadeSizes(NamedTuple):
    """How many items each stage keeps: retrieval ``top_n``, pre-ranking ``m``, ranking ``k``.

    Example:
        >>> CascadeSizes(top_n=500, m=100, k=10).m
        100
    """

    top_n: int = 200
    m: int = 50
    k: int = 10


#: The sizes used when none are given.
DEFAULT_SIZES = CascadeSizes()


@dataclass(frozen=True)
class CascadeResult:
    """What the cascade recommends for a batch of B requests, best first.

    Attributes:
        item_ids: int32 [B, K] rows of the exported item corpus.
        item_features: int32 [B, K, 8] those items' features (``items`` of the contract).
        scores: float32 [B, K] ranking scores.
        timings_ms: milliseconds spent in ``retrieval``, ``prerank``, ``rank`` and ``total``.

    Example:
        >>> from serving.export.toy_servables import toy_backend, toy_request
        >>> result = Cascade(toy_backend()).recommend(toy_request())
        >>> result.item_ids.shape, result.item_features.shape, result.scores.dtype
        ((1, 10), (1, 10, 8), dtype('float32'))
    """

    item_ids: np.ndarray
    item_features: np.ndarray
    scores: np.ndarray
    timings_ms: dict[str, float]


def check_sizes(top_n: int, m: int, k: int) -> None:
    """Raises ``ValueError`` unless 1 <= k <= m <= top_n (all ints).

    Example:
        >>> check_sizes(200, 50, 10)
    """
    for name, value in (("top_n", top_n), ("m", m), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if not k <= m <= top_n:
        raise ValueError(f"the cascade needs k <= m <= top_n, got top_n={top_n}, m={m}, k={k}")


def keep_selected(selected: np.ndarray, scores: np.ndarray, count: int) -> np.ndarray:
    """Positions [B, min(count, M)] of the selected items, by descending score, then position.

    Example:
        >>> keep_selected(np.array([[1.0, 0.0, 1.0]]), np.array([[0.2, 0.9, 0.5]]), 2)
        array([[2, 0]])
    """
    order = np.lexsort((-scores, selected < 0.5), axis=-1)
    return order[:, :count]


def _take(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    expanded = positions.reshape(positions.shape + (1,) * (values.ndim - 2))
    return np.take_along_axis(values, expanded, axis=1)


class Cascade:
    """Runs a request batch through retrieval, pre-ranking and ranking on one backend.

    Args:
        backend: where the exported models run (``serving.backends``).
        top_n: candidates retrieved per request (default of ``recommend``).
        m: candidates kept by pre-ranking.
        k: items kept by ranking (returned).

    Example:
        >>> from serving.backends import GrpcBackend
        >>> from serving.export.toy_servables import toy_backend, toy_request
        >>> cascade = Cascade(toy_backend(), top_n=100, m=20, k=10)
        >>> cascade.recommend(toy_request(), k=5).item_ids.shape
        (1, 5)
        >>> remote = Cascade(GrpcBackend("127.0.0.1:8500"), top_n=500, m=100, k=10)  # TF Serving
    """

    def __init__(
        self,
        backend: PredictBackend,
        top_n: int = DEFAULT_SIZES.top_n,
        m: int = DEFAULT_SIZES.m,
        k: int = DEFAULT_SIZES.k,
    ):
        check_sizes(top_n, m, k)
        self.backend = backend
        self.top_n, self.m, self.k = top_n, m, k

    def recommend(
        self,
        request: Mapping[str, np.ndarray],
        top_n: int | None = None,
        m: int | None = None,
        k: int | None = None,
    ) -> CascadeResult:
        """Recommends for a batch: ``request`` holds ``context`` [B, 3], ``user`` [B, 5],
        ``seq`` [B, 50, 5], ``seq_mask`` [B, 50] (contract ids); sizes default to the cascade's.

        Raises ``ValueError`` for missing features or bad sizes, a ``BackendError`` when a stage
        fails.

        Example:
            >>> from serving.export.toy_servables import toy_backend, toy_request
            >>> cascade = Cascade(toy_backend())
            >>> cascade.recommend(toy_request(), top_n=100, m=20, k=5).scores.shape
            (1, 5)
        """
        top_n = self.top_n if top_n is None else top_n
        m = self.m if m is None else m
        k = self.k if k is None else k
        check_sizes(top_n, m, k)
        missing = sorted(set(sig.REQUEST_SPECS) - set(request))
        if missing:
            raise ValueError(f"the request lacks the features {missing}")
        features = {name: request[name] for name in sig.REQUEST_SPECS}
        timings_ms: dict[str, float] = {}
        started = time.perf_counter()

        retrieved = self.backend.predict(sig.RETRIEVAL, features | {sig.TOP_N: np.int32(top_n)})
        item_ids = retrieved[sig.ITEM_IDS]
        items = retrieved[sig.ITEM_FEATURES]
        timings_ms["retrieval"] = _elapsed_ms(started)

        for stage, count in ((sig.PRERANK, m), (sig.RANK, k)):
            stage_started = time.perf_counter()
            scored = self.backend.predict(
                stage,
                features
                | {
                    sig.ITEMS: items,
                    sig.ITEM_MASK: np.ones(item_ids.shape, bool),
                    sig.K: np.int32(count),
                },
            )
            kept = keep_selected(scored[sig.SELECTED], scored[sig.SCORES], count)
            item_ids, items = _take(item_ids, kept), _take(items, kept)
            scores = _take(scored[sig.SCORES], kept)
            timings_ms[stage] = _elapsed_ms(stage_started)

        timings_ms["total"] = _elapsed_ms(started)
        return CascadeResult(item_ids, items, scores, timings_ms)

    def warm_up(self) -> CascadeResult:
        """Runs one request of padding ids with an empty history through every stage, so the
        first real request does not pay for loading, tracing or connecting.

        Example:
            >>> from serving.export.toy_servables import toy_backend
            >>> Cascade(toy_backend()).warm_up().item_ids.shape
            (1, 10)
        """
        return self.recommend(
            {
                name: np.zeros([1, *spec.shape[1:]], spec.dtype.as_numpy_dtype)
                for name, spec in sig.REQUEST_SPECS.items()
            }
        )


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
