"""Request micro-batching: concurrent cascade calls with the same sizes run as one batch.

Each caller's rows wait in a queue; a worker takes the oldest call, adds every queued call with
the same sizes (``CascadeSizes``) for up to ``max_wait_ms`` or until ``max_batch_rows`` rows, runs
the cascade once on the concatenated rows and hands each caller its own rows back. While a batch
runs, new calls queue up, so under load batches grow by themselves.

Example:
    >>> from dftopk_cascade.serving.backends import LocalBackend
    >>> from dftopk_cascade.serving.cascade_inference import Cascade
    >>> from dftopk_cascade.serving.export.toy_servables import toy_cascade_export, toy_request
    >>> cascade = Cascade(LocalBackend(toy_cascade_export()), 200, 50, 10)
    >>> batcher = CascadeBatcher(cascade, max_batch_rows=32, max_wait_ms=1.0)
    >>> result = batcher.recommend(toy_request(), (200, 50, 10))   # from any thread
    >>> batcher.close()
"""

import collections
import dataclasses
import queue
import threading
import time
from concurrent.futures import Future

import numpy as np
from dftopk_cascade.serving.cascade_inference import Cascade, CascadeResult


@dataclasses.dataclass
class _Call:
    features: dict[str, np.ndarray]
    sizes: tuple[int, int, int]
    future: Future
    enqueued: float

    @property
    def rows(self) -> int:
        return int(next(iter(self.features.values())).shape[0])


class CascadeBatcher:
    """Runs ``Cascade.recommend`` for concurrent callers in shared batches.

    Args:
        cascade: the cascade to run.
        max_batch_rows: most request rows in one batch (a larger single call runs alone).
        max_wait_ms: how long a batch waits for more calls after its first one.
        workers: threads running batches (more overlap remote backends' network waits).

    Each result's ``timings_ms`` adds ``queue`` (ms from the call to its batch's start) and
    ``batch_rows`` (rows in that batch).

    Example:
        >>> from dftopk_cascade.serving.cascade_inference import Cascade
        >>> from dftopk_cascade.serving.export.toy_servables import toy_backend, toy_request
        >>> cascade = Cascade(toy_backend(), 200, 50, 10)
        >>> with CascadeBatcher(cascade) as batcher:
        ...     batcher.recommend(toy_request(), (200, 50, 10)).item_ids.shape
        (1, 10)
    """

    def __init__(
        self,
        cascade: Cascade,
        max_batch_rows: int = 32,
        max_wait_ms: float = 1.0,
        workers: int = 1,
    ):
        if max_batch_rows < 1 or workers < 1 or max_wait_ms < 0:
            raise ValueError(
                "max_batch_rows and workers must be >= 1 and max_wait_ms >= 0, got "
                f"{max_batch_rows}, {workers}, {max_wait_ms}"
            )
        self.cascade = cascade
        self.max_batch_rows = max_batch_rows
        self.max_wait_s = max_wait_ms / 1000.0
        self._queue: queue.Queue[_Call | None] = queue.Queue()
        self._closed = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"cascade-batcher-{index}", daemon=True)
            for index in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def recommend(
        self,
        features: dict[str, np.ndarray],
        sizes: tuple[int, int, int],
        timeout_s: float | None = None,
    ) -> CascadeResult:
        """The cascade's result for ``features`` [B, ...] with ``sizes`` (``CascadeSizes``).

        Raises what the cascade raises, ``TimeoutError`` after ``timeout_s``, and
        ``RuntimeError`` once closed.

        Example:
            >>> from dftopk_cascade.serving.cascade_inference import Cascade
            >>> from dftopk_cascade.serving.export.toy_servables import toy_backend, toy_request
            >>> cascade = Cascade(toy_backend(), 200, 50, 10)
            >>> with CascadeBatcher(cascade) as batcher:
            ...     batcher.recommend(toy_request(), (100, 20, 5), timeout_s=30.0).scores.shape
            (1, 5)
        """
        if self._closed.is_set():
            raise RuntimeError("the batcher is closed")
        call = _Call(dict(features), tuple(sizes), Future(), time.perf_counter())
        self._queue.put(call)
        return call.future.result(timeout_s)

    def close(self) -> None:
        """Stops the workers after the batches already queued.

        Example:
            >>> from dftopk_cascade.serving.cascade_inference import Cascade
            >>> from dftopk_cascade.serving.export.toy_servables import toy_backend, toy_request
            >>> cascade = Cascade(toy_backend(), 200, 50, 10)
            >>> CascadeBatcher(cascade).close()
        """
        self._closed.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        while not self._queue.empty():
            call = self._queue.get()
            if call is not None:
                call.future.set_exception(RuntimeError("the batcher closed before this call ran"))

    def __enter__(self) -> "CascadeBatcher":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _work(self) -> None:
        held: collections.deque[_Call] = collections.deque()
        while True:
            first = held.popleft() if held else self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first, held)
            self._run(batch)
            if stop:
                for call in held:
                    self._run([call])
                return

    def _gather(self, first: _Call, held: collections.deque) -> tuple[list[_Call], bool]:
        """``first`` plus queued calls of the same sizes; the rest go to ``held``."""
        batch, rows = [first], first.rows
        for call in list(held):
            if call.sizes == first.sizes and rows + call.rows <= self.max_batch_rows:
                held.remove(call)
                batch.append(call)
                rows += call.rows
        deadline = time.perf_counter() + self.max_wait_s
        while rows < self.max_batch_rows:
            try:
                call = self._queue.get(timeout=max(deadline - time.perf_counter(), 0.0))
            except queue.Empty:
                break
            if call is None:
                return batch, True
            if call.sizes == first.sizes and rows + call.rows <= self.max_batch_rows:
                batch.append(call)
                rows += call.rows
            else:
                held.append(call)
        return batch, False

    def _run(self, batch: list[_Call]) -> None:
        started = time.perf_counter()
        try:
            features = {
                name: np.concatenate([call.features[name] for call in batch])
                for name in batch[0].features
            }
            result = self.cascade.recommend(features, *batch[0].sizes)
        except Exception as error:  # every caller of the batch gets the failure
            for call in batch:
                call.future.set_exception(error)
            return
        start = 0
        rows = sum(call.rows for call in batch)
        for call in batch:
            end = start + call.rows
            timings = result.timings_ms | {
                "queue": (started - call.enqueued) * 1000.0,
                "batch_rows": float(rows),
            }
            call.future.set_result(
                CascadeResult(
                    result.item_ids[start:end],
                    result.item_features[start:end],
                    result.scores[start:end],
                    timings,
                )
            )
            start = end
