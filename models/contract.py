"""The batch contract as the models see it: feature names, shapes, dtypes (docs/CONTRACTS.md).

Batches come from ``dftopk_cascade.pipelines.input.make_dataset``; the shapes and dtypes of their
model inputs are ``dftopk_cascade.pipelines.example_format.model_input_specs`` (which the serving
signatures take too). This module names what the models rely on, for building a model before it sees
data (``zero_features``).

Example:
    >>> zero_features(batch_size=2, candidates=40)["items"].shape.as_list()
    [2, 40, 8]
"""

import tensorflow as tf
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines.labels import STAGE_IN_BATCH_NEGATIVE

#: Fields per feature group.
FIELD_COUNTS: dict[str, int] = fmt.FIELD_COUNTS
#: Candidates per request before in-batch negatives: 4 stage groups of 10.
STAGE_CANDIDATES: int = fmt.NUM_CANDIDATES
#: Stage id of an in-batch negative in ``features["stage"]``.
IN_BATCH_NEGATIVE_STAGE: int = STAGE_IN_BATCH_NEGATIVE


def zero_features(batch_size: int = 1, candidates: int = STAGE_CANDIDATES) -> dict[str, tf.Tensor]:
    """A batch of padding ids with every mask True: enough to create a model's variables.

    Example:
        >>> zero_features()["seq_mask"].dtype
        tf.bool
    """
    specs = fmt.model_input_specs(candidates)
    return {
        name: tf.zeros([batch_size, *spec.shape[1:]], spec.dtype)
        if spec.dtype != tf.bool
        else tf.ones([batch_size, *spec.shape[1:]], tf.bool)
        for name, spec in specs.items()
    }
