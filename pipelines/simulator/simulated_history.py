"""The simulator's behaviour history: each user's last 50 effective views.

Rows follow ``recflow.SEQUENCE_COLUMNS`` and are left-padded with zeros (newest last), exactly
like ``seq_effective_50_dict`` entries. Before the first simulated day every user gets a warm-start
history of up to 50 videos drawn from its favourite categories, preferring what it likes, with
``request_id`` 0 (behaviour from before the dataset).

Example:
    >>> history = BehaviourHistory.warm_start(world, np.random.default_rng(1), 10**9)
    >>> history.sequences(np.array([0, 1])).shape
    (2, 50, 10)
"""

import numpy as np
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.simulator.simulated_world import SimulatedWorld

WARM_START_DRAWS = 150
WARM_START_SPAN_SECONDS = 30 * 86_400
FULL_HISTORY_SHARE = 0.6
_USER_BLOCK = 4096


def sequence_rows(
    world: SimulatedWorld,
    videos: np.ndarray,
    request_timestamps: np.ndarray,
    playing_times: np.ndarray,
    request_ids: np.ndarray,
) -> np.ndarray:
    """Returns int64 [m, len(SEQUENCE_COLUMNS)]: one behaviour row per viewed video.

    Example:
        >>> rows = sequence_rows(world, np.array([3]), np.array([5000]), np.array([900]),
        ...                      np.array([7]))
        >>> rows.shape, int(rows[0, recflow.SEQUENCE_COLUMNS.index(recflow.REQUEST_ID)])
        ((1, 10), 7)
    """
    columns = {
        recflow.VIDEO_ID: videos,
        recflow.AUTHOR_ID: world.item_author[videos],
        recflow.CATEGORY_LEVEL_TWO: world.item_category_two[videos],
        recflow.CATEGORY_LEVEL_ONE: world.item_category_one[videos],
        recflow.UPLOAD_TYPE: world.item_upload_type[videos],
        recflow.UPLOAD_TIMESTAMP: world.item_upload_timestamp[videos],
        recflow.DURATION: world.item_duration[videos],
        recflow.REQUEST_TIMESTAMP: request_timestamps,
        recflow.PLAYING_TIME: playing_times,
        recflow.REQUEST_ID: request_ids,
    }
    return np.stack(
        [np.asarray(columns[name], np.int64) for name in recflow.SEQUENCE_COLUMNS], axis=1
    )


class BehaviourHistory:
    """Per-user rolling window of the last ``recflow.SEQUENCE_LENGTH`` effective views.

    Example:
        >>> history = BehaviourHistory(users=3)
        >>> history.append(np.array([1]), np.ones([1, 10], np.int64))
        >>> history.sequences(np.array([1]))[0, -1].tolist()
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    """

    def __init__(self, users: int) -> None:
        self.rows = np.zeros(
            (users, recflow.SEQUENCE_LENGTH, len(recflow.SEQUENCE_COLUMNS)), np.int64
        )

    @classmethod
    def warm_start(
        cls, world: SimulatedWorld, rng: np.random.Generator, start_epoch: int
    ) -> "BehaviourHistory":
        """Gives every user a history from before ``start_epoch`` (seconds).

        60% of users have a full window; the others between 0 and 49 rows. Videos come from the
        user's favourite categories, drawn with probability increasing with the true preference.

        Example:
            >>> BehaviourHistory.warm_start(world, np.random.default_rng(0), 10**9).rows.shape
            (200, 50, 10)
        """
        history = cls(world.size.users)
        length = recflow.SEQUENCE_LENGTH
        for first in range(0, world.size.users, _USER_BLOCK):
            users = np.arange(first, min(first + _USER_BLOCK, world.size.users))
            draws = world.sample_interest_items(users, WARM_START_DRAWS, rng)
            logits = world.preference_logits(users, draws, rng.integers(0, 24, len(users)))
            keys = logits + rng.gumbel(size=logits.shape)
            videos = np.take_along_axis(draws, np.argsort(-keys, axis=1)[:, :length], axis=1)
            ages = np.sort(rng.random((len(users), length)) * WARM_START_SPAN_SECONDS, axis=1)
            timestamps = (start_epoch - WARM_START_SPAN_SECONDS + ages.astype(np.int64)) * 1000
            fraction = rng.uniform(0.3, 1.2, videos.shape)
            playing = (world.item_duration[videos] * fraction).astype(np.int64)
            rows = sequence_rows(
                world,
                videos.ravel(),
                timestamps.ravel(),
                playing.ravel(),
                np.zeros(videos.size, np.int64),
            ).reshape(len(users), length, -1)
            full = rng.random(len(users)) < FULL_HISTORY_SHARE
            kept = np.where(full, length, rng.integers(0, length, len(users)))
            rows[np.arange(length)[None, :] < (length - kept)[:, None]] = 0
            history.rows[users] = rows
        return history

    def sequences(self, users: np.ndarray) -> np.ndarray:
        """Returns a copy of the users' windows: int64 [len(users), 50, 10].

        Example:
            >>> BehaviourHistory(users=2).sequences(np.array([0, 0, 1])).shape
            (3, 50, 10)
        """
        return self.rows[users]

    def append(self, users: np.ndarray, rows: np.ndarray) -> None:
        """Appends behaviour ``rows`` [m, 10], given in time order, to ``users`` [m].

        Each touched user keeps its last 50 rows (old ones shift left). Vectorised: no loop
        over users.

        Example:
            >>> history = BehaviourHistory(users=1)
            >>> history.append(np.zeros(60, np.int64), np.arange(60)[:, None].repeat(10, 1))
            >>> int(history.sequences(np.array([0]))[0, 0, 0])
            10
        """
        if len(users) == 0:
            return
        order = np.argsort(users, kind="stable")
        users, rows = users[order], rows[order]
        touched, first, count = np.unique(users, return_index=True, return_counts=True)
        length = recflow.SEQUENCE_LENGTH
        # Position of each kept row in the concatenation (old window, new rows).
        position = count[:, None] + np.arange(length)[None, :]
        old = self.rows[touched][np.arange(len(touched))[:, None], np.minimum(position, length - 1)]
        new = rows[np.clip(first[:, None] + position - length, 0, len(rows) - 1)]
        self.rows[touched] = np.where((position < length)[..., None], old, new)
