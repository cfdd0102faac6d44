"""Contiguous time windows over the requests: the converted "days" (train, validation, test).

The requests' moments are split into ``count`` windows of about equal request counts, with every
boundary moved back to the midnight (UTC) of its day, so a window is a run of whole calendar
days and is named after its first day (``YYYY-MM-DD``, as RecFlow days are). The last window is
the test, the one before it the validation, every earlier one training.

Example:
    >>> day = 86_400
    >>> windows = time_windows(np.array([0, day, 2 * day, 3 * day, 3 * day + 5]), count=3)
    >>> windows.names, windows.window_of_request.tolist()
    (['1970-01-01', '1970-01-02', '1970-01-04'], [0, 1, 1, 2, 2])
    >>> windows.splits()
    {'train': ['1970-01-01'], 'validation': ['1970-01-02'], 'test': ['1970-01-04']}
"""

import datetime
from dataclasses import dataclass

import numpy as np
from dftopk_cascade.pipelines.movielens.errors import MovieLensError

SECONDS_PER_DAY = 86_400
#: Training, validation and test: at least one window each.
MIN_WINDOWS = 3


@dataclass(frozen=True)
class TimeWindows:
    """The windows and the window of every request.

    Attributes:
        names: window names (first day, ``YYYY-MM-DD``), in time order.
        starts: int64 [windows]: first second of each window (a UTC midnight).
        window_of_request: int64 [requests]: index into ``names``.

    Example:
        >>> windows = time_windows(np.array([0, 86_400, 3 * 86_400]), count=3)
        >>> windows.starts.tolist()
        [0, 86400, 259200]
    """

    names: list[str]
    starts: np.ndarray
    window_of_request: np.ndarray

    def splits(self) -> dict[str, list[str]]:
        """Window names by role: ``train`` (all but the last two), ``validation``, ``test``.

        Example:
            >>> windows = time_windows(np.array([0, 86_400, 3 * 86_400]), count=3)
            >>> sorted(windows.splits())
            ['test', 'train', 'validation']
        """
        return {
            "train": self.names[:-2],
            "validation": self.names[-2:-1],
            "test": self.names[-1:],
        }


def day_name(second: int) -> str:
    """The UTC date of a Unix time, ``YYYY-MM-DD``.

    Example:
        >>> day_name(881250949)
        '1997-12-04'
    """
    return datetime.datetime.fromtimestamp(second, datetime.UTC).strftime("%Y-%m-%d")


def time_windows(moments: np.ndarray, count: int) -> TimeWindows:
    """Splits ``moments`` (Unix seconds) into ``count`` whole-day windows of similar size.

    Raises ``MovieLensError`` when ``count`` is below ``MIN_WINDOWS`` or the moments span fewer
    distinct day boundaries than ``count`` windows need.

    Example:
        >>> time_windows(np.array([0, 1, 2]), count=3)
        Traceback (most recent call last):
        ...
        dftopk_cascade.pipelines.movielens.errors.MovieLensError: --windows 3: the requests make
        only 1 ...
    """
    if count < MIN_WINDOWS:
        raise MovieLensError(
            f"--windows must be >= {MIN_WINDOWS} (training, validation, test), got {count}"
        )
    ordered = np.sort(np.asarray(moments, np.int64))
    quantiles = ordered[(np.arange(count) * len(ordered)) // count]
    starts = np.unique(quantiles // SECONDS_PER_DAY * SECONDS_PER_DAY)
    if len(starts) < count:
        raise MovieLensError(
            f"--windows {count}: the requests make only {len(starts)} windows of whole days; "
            "ask for fewer windows"
        )
    window_of_request = np.searchsorted(starts, moments, side="right") - 1
    return TimeWindows(
        names=[day_name(int(start)) for start in starts],
        starts=starts,
        window_of_request=window_of_request.astype(np.int64),
    )
