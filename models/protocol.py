"""The paper's evaluation protocol, defined once: cut-offs, metric keys and how each is computed.

``PROTOCOL`` lists every metric as (key, function, stages, k, keeps). The same key names a
metric everywhere: in Keras logs (``CascadeModel``'s evaluation, ``val_`` + key in ``fit``), in
``MODEL_DIR/metrics.json`` (``dftopk_cascade.models.training.evaluate``) and in the benchmark tables
that read it.

==============  ==============================================================================
key             what
==============  ==============================================================================
joint_recall    retrieval keeps its top-30, pre-ranking the top-20 of those; share of the label
                top-10 kept
recall@10@20    pre-ranking: share of the label top-10 in its top-20
recall@10@30    retrieval: share of the label top-10 in its top-30 by score
ndcg@10         pre-ranking NDCG@10 (labels as gains)
kendall_tau     pre-ranking Kendall tau-b between scores and labels (not streamed in Keras logs:
                it compares every pair of candidates)
rank_ndcg@10    the ranking stage's NDCG@10
==============  ==============================================================================

``function`` names a per-request function that ``dftopk_tf.metrics`` (TensorFlow) and
``dftopk_tf.metrics_numpy`` (the NumPy reference) both define as ``<function>_per_request``,
called as ``function(labels, *stage scores, k, *keeps)``; ``KERAS_METRICS`` gives its streaming
Keras metric, built as ``Metric(k, *keeps, name=key)``.

Ties count against the model. The metrics break a tie in scores by lower index, and the converted
data store each request's candidates in label order (the ranked items first), so a model that
scores candidates alike would be handed the ground truth by their position: a constant scorer
would get a joint recall of 1.0. Every function here first reorders the candidates least relevant
first (``least_relevant_first``), so that a tie between a relevant and a less relevant candidate
goes to the less relevant one. Scores without ties get the same values in any order. A trained
model ties too where a request holds the same item twice (a candidate again among its in-batch
negatives, with label 0): the tie between the two copies goes to the less relevant one.

Tied means equal up to float noise (``dftopk_cascade.models.ties``): two copies of one item can
score a few ulps apart on one CPU and alike on another, so scores within
``dftopk_cascade.models.ties.TIE_RTOL`` of the request's score scale tie. Every metric here reads
scores only through their order, so each stage's scores are replaced by their tied groups' ranks
(``dftopk_cascade.models.ties.tie_ranks``) before the metrics see them.

Example:
    >>> [metric.key for metric in PROTOCOL]
    ['joint_recall', 'recall@10@20', 'recall@10@30', 'ndcg@10', 'kendall_tau', 'rank_ndcg@10']
"""

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import tensorflow as tf
from dftopk_cascade.models.tf_keras import keras
from dftopk_cascade.models.ties import tie_ranks

from dftopk_tf import NDCG, JointRecall, KendallTau, RecallAtKM

#: Size of the ground-truth set: the top-10 by label.
RECALL_K: int = 10
#: Candidates retrieval keeps for pre-ranking.
RETRIEVAL_KEEP: int = 30
#: Candidates pre-ranking keeps for ranking.
PRERANK_KEEP: int = 20
#: Cut-off of NDCG.
NDCG_K: int = 10

RETRIEVAL = "retrieval"
PRERANK = "prerank"
RANK = "rank"
#: The stages whose scores the protocol reads, in cascade order.
STAGES: tuple[str, ...] = (RETRIEVAL, PRERANK, RANK)

JOINT_RECALL = "joint_recall"
PRERANK_RECALL = f"recall@{RECALL_K}@{PRERANK_KEEP}"
RETRIEVAL_RECALL = f"recall@{RECALL_K}@{RETRIEVAL_KEEP}"
PRERANK_NDCG = f"ndcg@{NDCG_K}"
KENDALL_TAU = "kendall_tau"
RANK_NDCG = f"rank_ndcg@{NDCG_K}"
#: Prefix of the keys of the recalls against the simulator's true preference.
PREFERENCE_PREFIX = "preference_"
#: Version of how the metrics are computed, saved with scores that must be comparable.
#: 1: ties broken by the candidates' stored order (which favours the ground truth);
#: 2: ties count against the model (``least_relevant_first``), scores within float noise tied
#: (``dftopk_cascade.models.ties``; records scored before that counted only exactly equal scores
#: as tied).
PROTOCOL_VERSION: int = 2


@dataclass(frozen=True)
class ProtocolMetric:
    """One metric of the protocol.

    Args:
        key: its name in Keras logs, ``metrics.json`` and the benchmark tables.
        function: the per-request function, ``<function>_per_request`` in ``dftopk_tf.metrics``
            and ``dftopk_tf.metrics_numpy``.
        stages: the stages whose scores it reads, in cascade order.
        k: the ground-truth or NDCG cut-off (None: no cut-off).
        keeps: how many candidates each stage keeps (recalls only).
        streamed: whether ``CascadeModel`` streams it in Keras' evaluation logs.
        on_preference: whether it is also computed against the simulator's true preference.

    Example:
        >>> PROTOCOL[0].stages, PROTOCOL[0].keeps
        (('retrieval', 'prerank'), (30, 20))
    """

    key: str
    function: str
    stages: tuple[str, ...]
    k: int | None = None
    keeps: tuple[int, ...] = ()
    streamed: bool = True
    on_preference: bool = False

    def cut_offs(self) -> tuple[int, ...]:
        """``k`` and ``keeps``, the arguments after the scores.

        Example:
            >>> PROTOCOL[1].cut_offs()
            (10, 20)
        """
        return (*(() if self.k is None else (self.k,)), *self.keeps)

    def per_request(self, metrics_module: ModuleType, labels: Any, scores: dict) -> Any:
        """Per-request values [batch] (NaN where undefined) computed by ``metrics_module``.

        Example:
            >>> import numpy as np
            >>> from dftopk_tf import metrics_numpy
            >>> labels = np.array([[3.0, 2.0, 1.0]])
            >>> PROTOCOL[4].per_request(metrics_numpy, labels, {"prerank": -labels}).tolist()
            [-1.0]
        """
        function = getattr(metrics_module, f"{self.function}_per_request")
        return function(labels, *(scores[stage] for stage in self.stages), *self.cut_offs())


#: The protocol, in the order of ``metrics.json`` and of the printed tables.
PROTOCOL: tuple[ProtocolMetric, ...] = (
    ProtocolMetric(
        JOINT_RECALL,
        "joint_recall",
        (RETRIEVAL, PRERANK),
        RECALL_K,
        (RETRIEVAL_KEEP, PRERANK_KEEP),
        on_preference=True,
    ),
    ProtocolMetric(
        PRERANK_RECALL, "recall_at_k_m", (PRERANK,), RECALL_K, (PRERANK_KEEP,), on_preference=True
    ),
    ProtocolMetric(
        RETRIEVAL_RECALL,
        "recall_at_k_m",
        (RETRIEVAL,),
        RECALL_K,
        (RETRIEVAL_KEEP,),
        on_preference=True,
    ),
    ProtocolMetric(PRERANK_NDCG, "ndcg_at_k", (PRERANK,), NDCG_K),
    ProtocolMetric(KENDALL_TAU, "kendall_tau", (PRERANK,), streamed=False),
    ProtocolMetric(RANK_NDCG, "ndcg_at_k", (RANK,), NDCG_K),
)
#: The streaming Keras metric of each per-request function.
KERAS_METRICS: dict[str, type[keras.metrics.Metric]] = {
    "recall_at_k_m": RecallAtKM,
    "joint_recall": JointRecall,
    "ndcg_at_k": NDCG,
    "kendall_tau": KendallTau,
}


def least_relevant_first(labels: Any, scores: dict) -> tuple[Any, dict]:
    """``labels`` [batch, n] and every stage's scores reordered by label ascending (stable).

    Works on NumPy arrays and on tensors alike. A NaN label sorts with the padding (it counts as
    padding in the metrics). After this, the metrics' lower-index tie-break goes against relevance.

    Example:
        >>> labels, scores = least_relevant_first(np.array([[3.0, 1.0, -1.0]]),
        ...                                       {"prerank": np.array([[0.5, 0.5, 0.0]])})
        >>> labels.tolist(), scores["prerank"].tolist()
        ([[-1.0, 1.0, 3.0]], [[0.0, 0.5, 0.5]])
    """
    if isinstance(labels, np.ndarray):
        order = np.argsort(np.where(np.isnan(labels), -np.inf, labels), axis=-1, kind="stable")
        return np.take_along_axis(labels, order, axis=-1), {
            stage: np.take_along_axis(np.asarray(value), order, axis=-1)
            for stage, value in scores.items()
        }
    labels = tf.convert_to_tensor(labels)
    keys = tf.where(tf.math.is_nan(labels), float("-inf"), labels)
    order = tf.argsort(keys, axis=-1, direction="ASCENDING", stable=True)
    return tf.gather(labels, order, batch_dims=1), {
        stage: tf.gather(value, order, batch_dims=1) for stage, value in scores.items()
    }


def protocol_inputs(labels: Any, scores: dict) -> tuple[Any, dict]:
    """``least_relevant_first``'s labels and each stage's scores as tied groups' ranks.

    What every metric of the protocol reads; NumPy arrays and tensors alike.

    Example:
        >>> labels, scores = protocol_inputs(np.array([[3.0, 1.0, -1.0]]),
        ...                                  {"prerank": np.array([[0.5, 0.5 + 1e-9, 7.0]])})
        >>> labels.tolist(), scores["prerank"].tolist()
        ([[-1.0, 1.0, 3.0]], [[0.0, 1.0, 1.0]])
    """
    labels, scores = least_relevant_first(labels, _stage_scores(scores))
    if isinstance(labels, np.ndarray):
        real = labels >= 0  # NaN labels are padding
    else:
        real = tf.greater_equal(labels, 0.0)
    return labels, {stage: tie_ranks(value, real) for stage, value in scores.items()}


def per_request_metrics(metrics_module: ModuleType, labels: Any, scores: dict) -> dict[str, Any]:
    """Every protocol metric per request [batch], by key (NaN where undefined).

    Metrics of a stage missing from ``scores`` (a cascade without ranking) are left out.

    Args:
        metrics_module: ``dftopk_tf.metrics`` (tensors) or ``dftopk_tf.metrics_numpy`` (arrays).
        labels: float [batch, n], negative on padded candidates.
        scores: ``retrieval``, ``prerank`` and ``rank`` scores, float [batch, n].

    Example:
        >>> import numpy as np
        >>> from dftopk_tf import metrics_numpy
        >>> labels = np.array([[3.0, 2.0, 1.0]])
        >>> values = per_request_metrics(metrics_numpy, labels, dict.fromkeys(STAGES, labels))
        >>> float(values["joint_recall"][0]), float(values["kendall_tau"][0])
        (1.0, 1.0)
    """
    labels, scores = protocol_inputs(labels, scores)
    return {
        metric.key: metric.per_request(metrics_module, labels, scores)
        for metric in PROTOCOL
        if set(metric.stages) <= set(scores)
    }


def preference_per_request_metrics(
    metrics_module: ModuleType, preference: Any, scores: dict
) -> dict[str, Any]:
    """The recalls against the true preference per request, keys prefixed ``preference_``.

    Example:
        >>> import numpy as np
        >>> from dftopk_tf import metrics_numpy
        >>> preference = np.array([[0.9, 0.1, -1.0]])
        >>> values = preference_per_request_metrics(metrics_numpy, preference,
        ...                                         dict.fromkeys(STAGES, preference))
        >>> sorted(values)
        ['preference_joint_recall', 'preference_recall@10@20', 'preference_recall@10@30']
    """
    preference, scores = protocol_inputs(preference, scores)
    return {
        PREFERENCE_PREFIX + metric.key: metric.per_request(metrics_module, preference, scores)
        for metric in PROTOCOL
        if metric.on_preference
    }


def streamed_protocol(stages: tuple[str, ...] = STAGES) -> list[ProtocolMetric]:
    """The ``streamed`` metrics of the protocol that read only ``stages``.

    Example:
        >>> [metric.key for metric in streamed_protocol((RETRIEVAL, PRERANK))][-1]
        'ndcg@10'
    """
    return [metric for metric in PROTOCOL if metric.streamed and set(metric.stages) <= set(stages)]


def streaming_metrics(stages: tuple[str, ...] = STAGES) -> list[keras.metrics.Metric]:
    """The Keras metrics of ``CascadeModel``'s evaluation (``streamed`` ones), named by key.

    A cascade without a ranking stage passes ``stages`` without it and gets no ranking metric.

    Example:
        >>> [metric.name for metric in streaming_metrics()]
        ['joint_recall', 'recall@10@20', 'recall@10@30', 'ndcg@10', 'rank_ndcg@10']
    """
    return [
        KERAS_METRICS[metric.function](*metric.cut_offs(), name=metric.key)
        for metric in streamed_protocol(stages)
    ]


def update_streaming_metrics(
    metrics: list[keras.metrics.Metric], labels: tf.Tensor, scores: dict[str, tf.Tensor]
) -> None:
    """Adds a batch to ``streaming_metrics()``; a metric of several stages gets them stacked.

    Example:
        >>> metrics = streaming_metrics()
        >>> labels = tf.constant([[3.0, 2.0, 1.0]])
        >>> update_streaming_metrics(metrics, labels, dict.fromkeys(STAGES, labels))
        >>> float(metrics[0].result())
        1.0
    """
    labels, scores = protocol_inputs(labels, scores)
    streamed = streamed_protocol(tuple(scores))
    for metric, keras_metric in zip(streamed, metrics, strict=True):
        stage_scores = [scores[stage] for stage in metric.stages]
        y_pred = stage_scores[0] if len(stage_scores) == 1 else tf.stack(stage_scores, axis=-1)
        keras_metric.update_state(labels, y_pred)


def _stage_scores(outputs: dict) -> dict:
    """The stages' [batch, n] scores in a model's outputs (which may hold other tensors)."""
    return {stage: outputs[stage] for stage in STAGES if stage in outputs}
