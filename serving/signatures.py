"""The serving signatures of docs/CONTRACTS.md: model names, input specs, output dtypes.

Every exported model has one ``serving_default`` signature taking and returning dicts of named
tensors (B = requests, M = candidates):

=========  ===========================================  ==========================================
model      inputs                                       outputs
=========  ===========================================  ==========================================
retrieval  context int32 [B, 3], user int32 [B, 5],     item_ids int32 [B, n] (corpus rows),
           seq int32 [B, 50, 5], seq_mask bool [B, 50],  item_features int32 [B, n, 8],
           top_n int32 [] (optional)                    scores float32 [B, n];
                                                        n = min(top_n, corpus size)
prerank,   the request inputs above, items int32         scores float32 [B, M] (padded: lowest
rank       [B, M, 8], item_mask bool [B, M],             float), selected float32 [B, M] (exact
           k int32 [] (optional)                        top-k mask)
=========  ===========================================  ==========================================

``top_n`` and ``k`` have defaults set at export (``SignatureDef.defaults``): TF Serving's gRPC
Predict feeds them when a request leaves them out; its REST API needs every input, so the ``rest``
backend fills them in from the served signature.

Example:
    >>> sorted(INPUT_SPECS[RETRIEVAL])
    ['context', 'seq', 'seq_mask', 'top_n', 'user']
"""

from collections.abc import Mapping

import numpy as np
import tensorflow as tf
from dftopk_cascade.pipelines import example_format as fmt

RETRIEVAL = "retrieval"
PRERANK = "prerank"
RANK = "rank"
#: The exported models, in cascade order.
MODEL_NAMES: tuple[str, ...] = (RETRIEVAL, PRERANK, RANK)
SIGNATURE_NAME = "serving_default"

CONTEXT = fmt.CONTEXT
USER = fmt.USER
SEQ = fmt.SEQ
SEQ_MASK = fmt.SEQ_MASK
ITEMS = fmt.ITEMS
ITEM_MASK = fmt.ITEM_MASK
TOP_N = "top_n"
K = "k"
ITEM_IDS = "item_ids"
ITEM_FEATURES = "item_features"
SCORES = "scores"
SELECTED = "selected"

CONTEXT_WIDTH = len(fmt.CONTEXT_FIELDS)
USER_WIDTH = len(fmt.USER_FIELDS)
SEQUENCE_LENGTH = fmt.SEQUENCE_LENGTH
SEQUENCE_WIDTH = len(fmt.SEQUENCE_FIELDS)
ITEM_WIDTH = len(fmt.ITEM_FIELDS)

#: The request's own features, shared by the three models.
REQUEST_SPECS: dict[str, tf.TensorSpec] = {
    name: spec for name, spec in fmt.model_input_specs().items() if name in fmt.REQUEST_INPUTS
}
RETRIEVAL_SPECS: dict[str, tf.TensorSpec] = REQUEST_SPECS | {
    TOP_N: tf.TensorSpec([], tf.int32, TOP_N)
}
SCORER_SPECS: dict[str, tf.TensorSpec] = fmt.model_input_specs() | {
    K: tf.TensorSpec([], tf.int32, K)
}
#: Input specs of each model's ``serving_default`` signature.
INPUT_SPECS: dict[str, dict[str, tf.TensorSpec]] = {
    RETRIEVAL: RETRIEVAL_SPECS,
    PRERANK: SCORER_SPECS,
    RANK: SCORER_SPECS,
}
#: The inputs of each model's signature that have a default (a request may leave them out).
DEFAULTED_INPUTS: dict[str, tuple[str, ...]] = {RETRIEVAL: (TOP_N,), PRERANK: (K,), RANK: (K,)}
#: Output dtypes of each model's ``serving_default`` signature.
OUTPUT_DTYPES: dict[str, dict[str, tf.DType]] = {
    RETRIEVAL: {ITEM_IDS: tf.int32, ITEM_FEATURES: tf.int32, SCORES: tf.float32},
    PRERANK: {SCORES: tf.float32, SELECTED: tf.float32},
    RANK: {SCORES: tf.float32, SELECTED: tf.float32},
}


def as_numpy_inputs(
    model_name: str,
    inputs: Mapping[str, object],
    defaults: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Converts a model's inputs to NumPy arrays of the signature's dtypes, checking their names.

    Inputs in ``DEFAULTED_INPUTS`` may be left out: they take ``defaults[name]`` when given and
    are left out of the result otherwise (for the server to fill). Raises ``ValueError`` naming
    missing or unexpected inputs and any input that does not convert without loss (a
    non-integral number for an integer input, e.g. ``top_n=7.9``, or one outside its range).

    Example:
        >>> arrays = as_numpy_inputs(RANK, {"context": [[1, 2, 3]], "user": [[1] * 5],
        ...     "seq": [[[0] * 5] * 50], "seq_mask": [[False] * 50], "items": [[[1] * 8]],
        ...     "item_mask": [[True]], "k": 1})
        >>> arrays["k"].dtype
        dtype('int32')
        >>> as_numpy_inputs(RETRIEVAL, {"context": [[1, 2, 3]], "user": [[1] * 5],
        ...     "seq": [[[0] * 5] * 50], "seq_mask": [[False] * 50], "top_n": 7.9})
        Traceback (most recent call last):
        ...
        ValueError: retrieval input 'top_n' is not int32: non-integral value 7.9 (send integers)
    """
    specs = input_specs(model_name)
    inputs = dict(defaults or {}) | dict(inputs)
    optional = set(DEFAULTED_INPUTS[model_name])
    missing = sorted(set(specs) - set(inputs) - optional)
    unexpected = sorted(set(inputs) - set(specs))
    if missing or unexpected:
        raise ValueError(
            f"{model_name} takes inputs {sorted(specs)}; missing {missing}, unexpected {unexpected}"
        )
    arrays = {}
    for name, spec in specs.items():
        if name not in inputs:
            continue
        try:
            arrays[name] = _as_array(inputs[name], spec.dtype)
        except (TypeError, ValueError, OverflowError) as error:
            message = f"{model_name} input {name!r} is not {spec.dtype.name}: {error}"
            raise ValueError(message) from None
        if not spec.shape.is_compatible_with(arrays[name].shape):
            raise ValueError(
                f"{model_name} input {name!r} must have shape {spec.shape}, "
                f"got {arrays[name].shape}"
            )
    return arrays


def _as_array(value: object, dtype: tf.DType) -> np.ndarray:
    """``value`` as an array of ``dtype``; an integer input refuses non-integral numbers (NumPy
    would cut 7.9 to 7) and numbers outside its range."""
    array = np.asarray(value)
    if dtype.is_integer and array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or np.any(array != np.trunc(array)):
            raise ValueError(f"non-integral value {array.tolist()!r:.80} (send integers)")
    if dtype.is_integer and array.dtype.kind in "iuf" and array.size:
        limits = np.iinfo(dtype.as_numpy_dtype)
        if array.min() < limits.min or array.max() > limits.max:
            raise ValueError(f"value {array.tolist()!r:.80} outside [{limits.min}, {limits.max}]")
    return np.asarray(array, dtype=dtype.as_numpy_dtype)


def input_specs(model_name: str) -> dict[str, tf.TensorSpec]:
    """The input specs of ``model_name``'s signature; ``ValueError`` for an unknown model.

    Example:
        >>> input_specs(PRERANK)[K].shape
        TensorShape([])
    """
    if model_name not in INPUT_SPECS:
        raise ValueError(f"unknown model {model_name!r}; the exported models are {MODEL_NAMES}")
    return INPUT_SPECS[model_name]
