"""Weekday, hour and minute of RecFlow timestamps, vectorised, in RecFlow's time zone (UTC+8).

The public pipeline reads timestamps with the machine's local time; fixing the zone to RecFlow's
own (``recflow.UTC_OFFSET_SECONDS``) makes the features independent of the converting machine.

Example:
    >>> weekday_hour_minute(np.array([0]), per_second=1).tolist()  # 1970-01-01 08:00, a Thursday
    [[3, 8, 0]]
"""

import numpy as np
from dftopk_cascade.pipelines import recflow

_SECONDS_PER_DAY = 86_400
# 1970-01-01 was a Thursday; weekday 0 is Monday as in Python's time.struct_time.tm_wday.
_EPOCH_WEEKDAY = 3


def weekday_hour_minute(
    timestamps: np.ndarray, per_second: int, utc_offset: int = recflow.UTC_OFFSET_SECONDS
) -> np.ndarray:
    """Returns int64 [..., 3]: weekday (0 = Monday), hour and minute of each timestamp.

    Args:
        timestamps: integer timestamps since the epoch, any shape.
        per_second: timestamp units per second (1000 for ``request_timestamp``, 1 for
            ``upload_timestamp``).
        utc_offset: seconds east of UTC of the time zone to read them in.

    Example:
        >>> weekday_hour_minute(np.array([1705075200000]), per_second=1000).tolist()
        [[5, 0, 0]]
    """
    local = np.asarray(timestamps, np.int64) // per_second + utc_offset
    days, seconds_of_day = np.divmod(local, _SECONDS_PER_DAY)
    weekday = (days + _EPOCH_WEEKDAY) % 7
    hour = seconds_of_day // 3600
    minute = seconds_of_day % 3600 // 60
    return np.stack([weekday, hour, minute], axis=-1)
