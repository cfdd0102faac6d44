"""Keyword arguments and config keys that were renamed: the old name still works, with a warning.

``renamed_keyword`` takes the value a caller passed under a keyword's earlier name out of
``**kwargs`` and warns (``DeprecationWarning``) that the new name should be used instead.

Example:
    >>> import warnings
    >>> kwargs = {"temperature": 0.5}
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     renamed_keyword(kwargs, "temperature", "tau", None, "get_loss")
    0.5
    >>> str(caught[0].message)
    'get_loss: temperature= is deprecated, use tau= instead'
"""

import warnings
from typing import Any


def renamed_keyword(kwargs: dict[str, Any], old: str, new: str, new_value: Any, where: str) -> Any:
    """The value of keyword ``new``, taken from ``kwargs[old]`` (with a warning) if given there.

    Args:
        kwargs: the caller's remaining keyword arguments; ``old`` is removed from it.
        old: the keyword's earlier name.
        new: its current name.
        new_value: the value passed as ``new`` (``None`` when the caller did not pass it).
        where: the function or class, for the messages.

    Raises ``TypeError`` when both names were given.

    Example:
        >>> renamed_keyword({}, "temperature", "tau", 0.1, "get_loss")
        0.1
    """
    if old not in kwargs:
        return new_value
    old_value = kwargs.pop(old)
    if new_value is not None:
        raise TypeError(f"{where}: give {new}= only ({old}= is its deprecated name), not both")
    warnings.warn(
        f"{where}: {old}= is deprecated, use {new}= instead", DeprecationWarning, stacklevel=3
    )
    return old_value


def renamed_keys(config: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    """A copy of a saved config with the earlier keys in ``renames`` (old -> new) renamed.

    Configs saved by earlier versions (Keras files, ``config.json``) use the old keys; loading
    passes them through this so that they still load. A key already present under its new name
    wins.

    Example:
        >>> renamed_keys({"k": 2, "temperature": 0.5}, {"temperature": "tau"})
        {'k': 2, 'tau': 0.5}
    """
    config = dict(config)
    for old, new in renames.items():
        if old in config:
            value = config.pop(old)
            config.setdefault(new, value)
    return config
