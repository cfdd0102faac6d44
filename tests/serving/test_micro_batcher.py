"""Micro-batching: concurrent calls share batches, each caller gets its own rows, errors reach
every caller of a failed batch, and calls with different sizes are never mixed."""

import threading
import time

import numpy as np
import pytest
from dftopk_cascade.serving.cascade_inference import CascadeResult
from dftopk_cascade.serving.micro_batcher import CascadeBatcher


class RecordingCascade:
    """Returns each row's user id as its items; records every batch it runs."""

    def __init__(self, delay_s: float = 0.05, fail_on: int | None = None):
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.batches: list[tuple[list[int], tuple[int, int, int]]] = []
        self._lock = threading.Lock()

    def recommend(self, features, retrieval_keep, prerank_keep, rank_keep) -> CascadeResult:
        users = features["user"][:, 0]
        with self._lock:
            self.batches.append((users.tolist(), (retrieval_keep, prerank_keep, rank_keep)))
        time.sleep(self.delay_s)
        if self.fail_on is not None and self.fail_on in users:
            raise RuntimeError(f"user {self.fail_on} broke the batch")
        ids = np.repeat(users[:, None], rank_keep, axis=1).astype(np.int32)
        return CascadeResult(ids, ids[..., None], ids.astype(np.float32), {"total": 1.0})


def _features(user: int, rows: int = 1) -> dict[str, np.ndarray]:
    return {"user": np.full([rows, 5], user, np.int32)}


def _call_concurrently(batcher, calls) -> dict[int, object]:
    answers: dict[int, object] = {}

    def run(index, user, sizes, rows):
        try:
            answers[index] = batcher.recommend(_features(user, rows), sizes, timeout_s=10.0)
        except Exception as error:
            answers[index] = error

    threads = [
        threading.Thread(target=run, args=(index, *call)) for index, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
        time.sleep(0.002)
    for thread in threads:
        thread.join()
    return answers


def test_concurrent_calls_share_batches_and_get_their_own_rows():
    cascade = RecordingCascade()
    with CascadeBatcher(cascade, max_batch_rows=8, max_wait_ms=30.0) as batcher:
        answers = _call_concurrently(batcher, [(user, (50, 10, 2), 1) for user in range(8)])
    for user in range(8):
        np.testing.assert_array_equal(answers[user].item_ids, [[user, user]])
        assert answers[user].timings_ms["queue"] >= 0.0
    assert len(cascade.batches) < 8
    assert sorted(u for users, _ in cascade.batches for u in users) == list(range(8))
    assert max(answers[user].timings_ms["batch_rows"] for user in range(8)) > 1


def test_batches_respect_the_row_limit_and_multi_row_calls_stay_together():
    cascade = RecordingCascade()
    calls = [(user, (50, 10, 2), 3) for user in range(5)]
    with CascadeBatcher(cascade, max_batch_rows=7, max_wait_ms=30.0) as batcher:
        answers = _call_concurrently(batcher, calls)
    assert all(len(users) <= 7 for users, _ in cascade.batches)
    for user in range(5):
        np.testing.assert_array_equal(answers[user].item_ids, [[user, user]] * 3)


def test_calls_with_different_sizes_are_not_mixed():
    cascade = RecordingCascade()
    calls = [(user, (50, 10, 2 + user % 2), 1) for user in range(6)]
    with CascadeBatcher(cascade, max_batch_rows=8, max_wait_ms=30.0) as batcher:
        answers = _call_concurrently(batcher, calls)
    for users, sizes in cascade.batches:
        assert {2 + user % 2 for user in users} == {sizes[2]}
    for user in range(6):
        assert answers[user].item_ids.shape == (1, 2 + user % 2)


def test_a_failed_batch_fails_each_of_its_callers_and_the_batcher_goes_on():
    cascade = RecordingCascade(fail_on=3)
    with CascadeBatcher(cascade, max_batch_rows=8, max_wait_ms=30.0) as batcher:
        answers = _call_concurrently(batcher, [(user, (50, 10, 2), 1) for user in range(6)])
        failed_batch = next(users for users, _ in cascade.batches if 3 in users)
        for user in range(6):
            if user in failed_batch:
                assert isinstance(answers[user], RuntimeError)
                assert "user 3 broke" in str(answers[user])
            else:
                assert answers[user].item_ids[0, 0] == user
        assert batcher.recommend(_features(9), (50, 10, 2)).item_ids[0, 0] == 9


def test_closed_batchers_refuse_calls_and_bad_settings_are_named():
    batcher = CascadeBatcher(RecordingCascade(delay_s=0.0))
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.recommend(_features(1), (50, 10, 2))
    with pytest.raises(ValueError, match="max_batch_rows"):
        CascadeBatcher(RecordingCascade(), max_batch_rows=0)
