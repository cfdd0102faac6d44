"""Cascade inference: retrieval -> pre-ranking -> ranking, over any backend.

Each stage is one call of an exported model (``dftopk_cascade.serving.signatures``). Retrieval
returns the request's ``retrieval_keep`` best corpus items; pre-ranking scores them and its exact
top-k mask (the signature input ``k`` = ``prerank_keep``) keeps ``prerank_keep``; ranking scores
those and keeps ``rank_keep``. The earlier names ``top_n``, ``m`` and ``k`` of these sizes still
work as keywords of ``Cascade`` and ``Cascade.recommend``, with a ``DeprecationWarning``. The kept
items of a stage are its ``selected`` items ordered by its scores (ties: lower position first, as
``tf.math.top_k``).

Example:
    >>> from dftopk_cascade.serving.backends import LocalBackend
    >>> from dftopk_cascade.serving.export.toy_servables import toy_cascade_export, toy_request
    >>> cascade = Cascade(
    ...     LocalBackend(toy_cascade_export()), retrieval_keep=200, prerank_keep=50, rank_keep=10
    ... )
    >>> result = cascade.recommend(toy_request())    # request: context, user, seq, seq_mask
    >>> result.item_ids.shape, sorted(result.timings_ms)
    ((1, 10), ['prerank', 'rank', 'retrieval', 'total'])
"""

import argparse
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from dftopk_cascade.command_line.deprecated_flags import add_renamed_flag
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.backends.base import PredictBackend

from dftopk_tf.renamed import renamed_keyword


class CascadeSizes(NamedTuple):
    """How many candidates each stage passes on (docs/CONTRACTS.md, "Names").

    Example:
        >>> CascadeSizes(retrieval_keep=500, prerank_keep=100, rank_keep=10).prerank_keep
        100
    """

    retrieval_keep: int = 200
    prerank_keep: int = 50
    rank_keep: int = 10


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
        >>> from dftopk_cascade.serving.export.toy_servables import toy_backend, toy_request
        >>> result = Cascade(toy_backend()).recommend(toy_request())
        >>> result.item_ids.shape, result.item_features.shape, result.scores.dtype
        ((1, 10), (1, 10, 8), dtype('float32'))
    """

    item_ids: np.ndarray
    item_features: np.ndarray
    scores: np.ndarray
    timings_ms: dict[str, float]


def check_sizes(retrieval_keep: int, prerank_keep: int, rank_keep: int) -> None:
    """Raises ``ValueError`` unless 1 <= rank_keep <= prerank_keep <= retrieval_keep (all ints).

    Example:
        >>> check_sizes(200, 50, 10)
    """
    sizes = CascadeSizes(retrieval_keep, prerank_keep, rank_keep)
    for name, value in sizes._asdict().items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if not rank_keep <= prerank_keep <= retrieval_keep:
        raise ValueError(
            "the cascade needs rank_keep <= prerank_keep <= retrieval_keep, got "
            f"retrieval_keep={retrieval_keep}, prerank_keep={prerank_keep}, rank_keep={rank_keep}"
        )


#: The size flags (``add_size_flags``) and their earlier, deprecated names.
SIZE_FLAGS = {
    "retrieval_keep": ("--retrieval-keep", "--top-n", "candidates retrieved"),
    "prerank_keep": ("--prerank-keep", "--m", "candidates kept by pre-ranking"),
    "rank_keep": ("--rank-keep", "--k", "items kept by ranking (returned)"),
}


def add_size_flags(parser: argparse.ArgumentParser, when: str) -> None:
    """Adds ``--retrieval-keep``, ``--prerank-keep``, ``--rank-keep`` (old names deprecated).

    Their defaults are ``DEFAULT_SIZES``; ``when`` ends each help line.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_size_flags(parser, "by default")
        >>> parser.parse_args(["--prerank-keep", "20"]).prerank_keep
        20
    """
    for name, (flag, old_flag, meaning) in SIZE_FLAGS.items():
        default = getattr(DEFAULT_SIZES, name)
        help_text = f"{meaning} {when} (default {default})"
        add_renamed_flag(parser, flag, old_flag, type=int, default=default, help=help_text)


#: The sizes' earlier keyword names (deprecated) -> their names.
RENAMED_SIZES = {"top_n": "retrieval_keep", "m": "prerank_keep", "k": "rank_keep"}


def _renamed_sizes(sizes: dict[str, int | None], old: dict[str, int], where: str) -> list:
    """``sizes`` (name -> value or None) with values given under the earlier names ``old``."""
    for old_name, name in RENAMED_SIZES.items():
        sizes[name] = renamed_keyword(old, old_name, name, sizes[name], where)
    if old:
        raise TypeError(f"{where}: unexpected keyword arguments {sorted(old)}")
    return list(sizes.values())


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
        backend: where the exported models run (``dftopk_cascade.serving.backends``).
        retrieval_keep: candidates retrieved per request (default of ``recommend``).
        prerank_keep: candidates kept by pre-ranking.
        rank_keep: items kept by ranking (returned).
        **renamed: ``top_n``, ``m``, ``k``: the deprecated names of the three sizes.

    Example:
        >>> from dftopk_cascade.serving.backends import GrpcBackend
        >>> from dftopk_cascade.serving.export.toy_servables import toy_backend, toy_request
        >>> cascade = Cascade(toy_backend(), retrieval_keep=100, prerank_keep=20, rank_keep=10)
        >>> cascade.recommend(toy_request(), rank_keep=5).item_ids.shape
        (1, 5)
        >>> remote = Cascade(GrpcBackend("127.0.0.1:8500"), 500, 100, 10)  # TF Serving
    """

    def __init__(
        self,
        backend: PredictBackend,
        retrieval_keep: int | None = None,
        prerank_keep: int | None = None,
        rank_keep: int | None = None,
        **renamed: int,
    ):
        given = {"retrieval_keep": retrieval_keep, "prerank_keep": prerank_keep}
        sizes = _renamed_sizes(given | {"rank_keep": rank_keep}, renamed, "Cascade")
        sizes = [DEFAULT_SIZES[i] if size is None else size for i, size in enumerate(sizes)]
        check_sizes(*sizes)
        self.backend = backend
        self.sizes = CascadeSizes(*sizes)

    def recommend(
        self,
        request: Mapping[str, np.ndarray],
        retrieval_keep: int | None = None,
        prerank_keep: int | None = None,
        rank_keep: int | None = None,
        **renamed: int,
    ) -> CascadeResult:
        """Recommends for a batch: ``request`` holds ``context`` [B, 3], ``user`` [B, 5],
        ``seq`` [B, 50, 5], ``seq_mask`` [B, 50] (contract ids); sizes default to the cascade's.

        Raises ``ValueError`` for missing features or bad sizes, a ``BackendError`` when a stage
        fails.

        Example:
            >>> from dftopk_cascade.serving.export.toy_servables import toy_backend, toy_request
            >>> cascade = Cascade(toy_backend())
            >>> cascade.recommend(toy_request(), 100, 20, 5).scores.shape
            (1, 5)
        """
        given = {"retrieval_keep": retrieval_keep, "prerank_keep": prerank_keep}
        sizes = _renamed_sizes(given | {"rank_keep": rank_keep}, renamed, "Cascade.recommend")
        retrieval_keep, prerank_keep, rank_keep = (
            default if size is None else size
            for size, default in zip(sizes, self.sizes, strict=True)
        )
        check_sizes(retrieval_keep, prerank_keep, rank_keep)
        missing = sorted(set(sig.REQUEST_SPECS) - set(request))
        if missing:
            raise ValueError(f"the request lacks the features {missing}")
        features = {name: request[name] for name in sig.REQUEST_SPECS}
        timings_ms: dict[str, float] = {}
        started = time.perf_counter()

        retrieved = self.backend.predict(
            sig.RETRIEVAL, features | {sig.TOP_N: np.int32(retrieval_keep)}
        )
        item_ids = retrieved[sig.ITEM_IDS]
        items = retrieved[sig.ITEM_FEATURES]
        timings_ms["retrieval"] = _elapsed_ms(started)

        for stage, count in ((sig.PRERANK, prerank_keep), (sig.RANK, rank_keep)):
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
            >>> from dftopk_cascade.serving.export.toy_servables import toy_backend
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
