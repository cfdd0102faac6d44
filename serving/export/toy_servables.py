"""Small exported servables and a small exported cascade, for examples and quick checks.

The serving examples build what they run on with these, instead of each repeating the set-up:

- ``toy_scorer`` and ``toy_retrieval``: a pre-ranking/ranking and a retrieval servable with no
  model behind them (an item scores its first id; the user's first id picks its item), quick to
  save; ``save_toy_servable`` saves one as a SavedModel with its ``serving_default`` signature.
- ``toy_cascade_export``: the real cascade of ``models/`` with small layers and random weights
  over a random item corpus, exported with ``export_cascade`` (the TF Serving layout of
  ``python -m dftopk_cascade.serving.export``); ``toy_backend``: the ``local`` backend over it,
  loaded once; ``toy_request``: request features for it.

Example:
    >>> from dftopk_cascade.serving.saved_model_proto import signature_defaults
    >>> signature_defaults(save_toy_servable(toy_scorer(default_k=5)))
    {'k': array(5, dtype=int32)}
"""

import atexit
import functools
import shutil
import tempfile

import numpy as np
import tensorflow as tf
from dftopk_cascade.models.cascade import CascadeModel, build_cascade
from dftopk_cascade.models.config import CascadeConfig, example_schema
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.backends import LocalBackend
from dftopk_cascade.serving.export.item_index import ExactItemIndex
from dftopk_cascade.serving.export.saved_models import export_cascade
from dftopk_cascade.serving.export.servables import RetrievalServable, ScorerServable
from dftopk_cascade.serving.export.vocabulary import FeatureVocabulary

#: Distinct values of every id field of the toy cascade (``fmt.vocab_sizes`` adds padding + OOV).
TOY_ID_COUNT = 10
#: Items in the toy cascade's corpus.
TOY_CORPUS_SIZE = 300
#: Small layers, so that the toy cascade builds and exports in seconds.
TOY_LAYERS = {
    "embedding_dim": 4,
    "tower_units": (16, 8),
    "prerank_units": (16, 1),
    "rank_units": (16, 1),
    "rank_cross_layers": 1,
    "attention_units": 8,
}


def _toy_vocabulary() -> FeatureVocabulary:
    return FeatureVocabulary({sig.ITEMS: [100] * sig.ITEM_WIDTH})


def toy_scorer(default_k: int = 10) -> ScorerServable:
    """A pre-ranking/ranking servable whose score of an item is its first id (no weights).

    Example:
        >>> request = {name: tf.constant(value) for name, value in toy_request().items()}
        >>> outputs = toy_scorer().serve(
        ...     **request, items=tf.constant([[[3] * 8, [7] * 8, [5] * 8]]),
        ...     item_mask=tf.ones([1, 3], tf.bool), k=tf.constant(2))
        >>> outputs["scores"].numpy().tolist(), outputs["selected"].numpy().tolist()
        ([[3.0, 7.0, 5.0]], [[0.0, 1.0, 1.0]])
    """
    return ScorerServable(
        lambda features: tf.cast(features[sig.ITEMS][..., 0], tf.float32),
        [],
        _toy_vocabulary(),
        default_k=default_k,
    )


def toy_retrieval(default_top_n: int = 200) -> RetrievalServable:
    """A retrieval servable over 8 items (an identity index): the user's first id scores them.

    Example:
        >>> request = {name: tf.zeros([1, *spec.shape[1:]], spec.dtype)
        ...            for name, spec in sig.REQUEST_SPECS.items()}
        >>> toy_retrieval().serve(**request, top_n=tf.constant(3))["item_ids"].shape
        TensorShape([1, 3])
    """
    index = ExactItemIndex(np.eye(8, dtype=np.float32), np.ones([8, sig.ITEM_WIDTH], np.int32))
    return RetrievalServable(
        lambda features: tf.one_hot(features[sig.USER][:, 0], 8),
        [],
        index,
        _toy_vocabulary(),
        default_top_n=default_top_n,
    )


def save_toy_servable(
    servable: ScorerServable | RetrievalServable, folder: str | None = None
) -> str:
    """Saves ``servable`` as a SavedModel (``serving_default`` signature) in ``folder``.

    Args:
        servable: e.g. ``toy_scorer()`` or ``toy_retrieval()``.
        folder: where to save; a new temporary folder when None.

    Returns the folder.

    Example:
        >>> import os
        >>> os.path.isfile(os.path.join(save_toy_servable(toy_retrieval()), "saved_model.pb"))
        True
    """
    folder = folder or tempfile.mkdtemp(prefix="toy_servable_")
    tf.saved_model.save(servable, folder, signatures=servable.signatures())
    return folder


def toy_cascade_config(method: str = "bce") -> CascadeConfig:
    """The toy cascade's config: ``TOY_ID_COUNT`` values per id field, ``TOY_LAYERS``.

    Example:
        >>> toy_cascade_config().embedding_dim
        4
    """
    return CascadeConfig.from_schema(example_schema(TOY_ID_COUNT), method=method, **TOY_LAYERS)


def toy_corpus(size: int = TOY_CORPUS_SIZE, seed: int = 0) -> np.ndarray:
    """int32 [size, 8]: random item features, every id inside the toy vocabulary (>= 1).

    Example:
        >>> toy_corpus(5).shape
        (5, 8)
    """
    rng = np.random.default_rng(seed)
    return rng.integers(1, TOY_ID_COUNT + 1, size=(size, sig.ITEM_WIDTH)).astype(np.int32)


def toy_cascade() -> CascadeModel:
    """The toy cascade: ``dftopk_cascade.models.cascade`` with ``toy_cascade_config()``, random
    weights.

    Example:
        >>> sorted(toy_cascade().cascade_config.columns)
        ['context', 'items', 'seq', 'user']
    """
    return build_cascade(toy_cascade_config())


@functools.cache
def toy_cascade_export() -> str:
    """A folder holding version 1 of the toy cascade's retrieval, prerank and rank SavedModels.

    Exported once per process (into a temporary folder, removed when the process exits) and
    shared: treat it as read-only; export into a folder of your own with
    ``export_cascade(toy_cascade(), toy_corpus(), folder)``.

    Example:
        >>> import os
        >>> sorted(os.listdir(toy_cascade_export()))
        ['cascade.json', 'prerank', 'rank', 'retrieval']
    """
    folder = tempfile.mkdtemp(prefix="toy_cascade_export_")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    export_cascade(toy_cascade(), toy_corpus(), folder)
    return folder


@functools.cache
def toy_backend() -> LocalBackend:
    """The ``local`` backend over ``toy_cascade_export()``, loaded once per process and shared.

    Do not close it; open a backend of your own with ``LocalBackend(toy_cascade_export())``.

    Example:
        >>> toy_backend().versions
        {'retrieval': 1, 'prerank': 1, 'rank': 1}
    """
    return LocalBackend(toy_cascade_export())


def toy_request(batch_size: int = 1, history: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """Request features (context, user, seq, seq_mask) of ``batch_size`` random users.

    Args:
        batch_size: requests.
        history: real behaviours of each user (the rest of the 50 steps is padding).
        seed: the random users.

    Example:
        >>> {name: value.shape for name, value in toy_request().items()}
        {'context': (1, 3), 'user': (1, 5), 'seq': (1, 50, 5), 'seq_mask': (1, 50)}
    """
    rng = np.random.default_rng(seed)
    shape = (batch_size, sig.SEQUENCE_LENGTH, sig.SEQUENCE_WIDTH)
    seq = rng.integers(1, TOY_ID_COUNT + 1, size=shape)
    seq_mask = np.arange(sig.SEQUENCE_LENGTH)[None, :] < history
    return {
        sig.CONTEXT: rng.integers(1, 8, size=(batch_size, sig.CONTEXT_WIDTH)).astype(np.int32),
        sig.USER: rng.integers(1, TOY_ID_COUNT + 1, size=(batch_size, sig.USER_WIDTH)).astype(
            np.int32
        ),
        sig.SEQ: np.where(seq_mask[..., None], seq, 0).astype(np.int32),
        sig.SEQ_MASK: np.repeat(seq_mask, batch_size, axis=0),
    }
