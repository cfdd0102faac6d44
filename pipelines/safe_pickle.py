"""``load_data_pickle``: unpickles RecFlow's data files without running code from them.

RecFlow ships Python pickles (``request_id_dict/*.pkl``, ``seq_effective_50_dict/*.pkl``,
``others/id_cnt.pkl``). Plain ``pickle.load`` calls whatever function a file names, so a crafted
file runs arbitrary code. ``SafeUnpickler`` admits only what those files hold: dicts, lists,
tuples, strings, numbers (containers and scalars are pickle opcodes, not globals) and numpy
arrays, scalars and dtypes, whose reconstruction functions are listed in ``ALLOWED_GLOBALS``
(numpy 1's ``numpy.core`` and numpy 2's ``numpy._core`` spellings), plus ``_codecs.encode``, which
protocol 2 pickles use to rebuild bytes. Any other global is refused
with ``ForbiddenPickleError`` naming it.

Example:
    >>> import io, os, pickle
    >>> load_data_pickle(io.BytesIO(pickle.dumps({"u": np.arange(3)})))["u"]
    array([0, 1, 2])
    >>> load_data_pickle(io.BytesIO(pickle.dumps(os.system)))
    Traceback (most recent call last):
    ...
    dftopk_cascade.pipelines.safe_pickle.ForbiddenPickleError: the pickle names posix.system, ...
"""

import pickle
from typing import IO, Any

_NUMPY_CORES = ("numpy.core", "numpy._core")
ALLOWED_GLOBALS = frozenset(
    {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # encode: protocol 2 bytes
    | {(f"{core}.multiarray", "_reconstruct") for core in _NUMPY_CORES}
    | {(f"{core}.multiarray", "scalar") for core in _NUMPY_CORES}
    | {(f"{core}.numeric", "_frombuffer") for core in _NUMPY_CORES}
)


class ForbiddenPickleError(pickle.UnpicklingError):
    """A pickle names a global outside ``ALLOWED_GLOBALS`` (it could run code).

    Example:
        >>> str(ForbiddenPickleError("the pickle names os.system"))
        'the pickle names os.system'
    """


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only ``ALLOWED_GLOBALS``.

    Example:
        >>> import io
        >>> SafeUnpickler(io.BytesIO(pickle.dumps([1, "a", 2.5]))).load()
        [1, 'a', 2.5]
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise ForbiddenPickleError(
                f"the pickle names {module}.{name}, which a RecFlow file never holds (only "
                "dicts, strings, numbers and numpy arrays); refusing to load it"
            )
        return super().find_class(module, name)


def load_data_pickle(file: IO[bytes]) -> Any:
    """Unpickles ``file`` with ``SafeUnpickler``.

    Example:
        >>> import io
        >>> load_data_pickle(io.BytesIO(pickle.dumps({"n": np.int64(7)})))
        {'n': np.int64(7)}
    """
    return SafeUnpickler(file).load()
