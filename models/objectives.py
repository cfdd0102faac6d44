"""The training methods of the cascade, by name (``--method``): what loss each stage gets.

- Top-k methods (``dftopk``, ``dftopk-spread``, ``lcron-neuralsort``, ``lcron-softsort``,
  ``lcron-diffsort``, ``lapsum``, ``sparse-topk``, ``bce``; ``TopKCascadeObjective``): retrieval
  and pre-ranking are trained as one cascade with the LCRON scheme, ``dftopk_tf.CascadeTopKLoss``
  with the method's operator: per-stage top-k losses, the joint loss of the product of the two
  stages' selection probabilities, and learned stage weights. The ranking stage gets its own
  top-k loss with the same operator and labels (``TopKSelectionLoss``), added to the total.
- ``tfrs`` (``TFRSObjective``): the classic TensorFlow Recommenders recipe, every stage on its
  own: retrieval by sampled softmax over in-batch items (``tfrs.tasks.Retrieval``), pre-ranking
  and ranking by pointwise binary cross-entropy against the ground-truth mask
  (``tfrs.tasks.Ranking``).

Why the ranking stage is not a third stage of the joint loss: the paper's cascade loss and its
headline metric are two-stage (retrieval keeps 30, pre-ranking 20 of them); the labels *are* the
ranking stage's own past decisions (rank_pos = ranking top-10), and a third factor in the joint
product would send the ranking model's errors into the retrieval and pre-ranking gradients and
change the objective the methods are compared on. Trained side by side on the same labels with
its own loss, ranking shares nothing with the two-stage comparison.

Every objective returns a dict of scalar tensors: ``loss`` (the total to minimise) and the parts
named in its ``output_names``, which ``CascadeModel`` logs as metrics.

Temperatures: a method's temperature is measured against our score scale. The towers start from
small embeddings, so the first scores of a request differ by far less than the paper's raw dot
products, and the paper's DFTopK tau = 500 leaves every sigmoid flat until the scores have grown by
orders of magnitude. ``default_tau`` therefore gives 0.1 for every temperature-like knob,
one scale for all methods so that none is favoured; DiffSort's knob is a steepness (an inverse
temperature), and the public runs' 10 is that same scale. The values live in the operator registry
(``SelectionOperator.cascade_temperature``, beside the library's ``default_temperature``), TFRS's in
``TFRS_TAU``. How each method's result moves with its temperature is measured by the
experiments (``experiments.report.tau_sensitivity``; ``experiments.method_comparison`` tunes it per
method), not written here.

Example:
    >>> objective = make_objective("dftopk", retrieval_k=2, prerank_k=1, rank_k=1, label_k=1)
    >>> objective.output_names  # logged as metrics, "loss" is the total
    ('loss', 'retrieval_loss', 'prerank_loss', 'joint_loss', 'rank_loss', 'retrieval_weight', ...)
"""

import tensorflow as tf
import tensorflow_recommenders as tfrs
from dftopk_cascade.models.in_batch_softmax import InBatchSoftmax
from dftopk_cascade.models.tf_keras import keras, register_serializable

from dftopk_tf import CascadeTopKLoss, TopKSelectionLoss
from dftopk_tf.losses import ground_truth, masked_request_mean
from dftopk_tf.operators import OPERATOR_NAMES, get_operator
from dftopk_tf.renamed import renamed_keys, renamed_keyword

#: The sampled-softmax + pointwise TFRS baseline.
TFRS_METHOD = "tfrs"
#: Every training method, in a stable order: the top-k operators, then the TFRS baseline.
METHOD_NAMES: tuple[str, ...] = (*OPERATOR_NAMES, TFRS_METHOD)
#: The TFRS baseline's default retrieval softmax temperature tau (the top-k methods' defaults are
#: their operators' ``cascade_temperature``).
TFRS_TAU: float = 0.1


def check_method(method: str) -> str:
    """Returns ``method`` if it is a training method, else raises ``ValueError`` listing them.

    The one check of a method name in ``models``: the config (``CascadeConfig``) and the
    objective factory call it; what they build receives the checked name.

    Example:
        >>> check_method("dftopk")
        'dftopk'
    """
    if method not in METHOD_NAMES:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHOD_NAMES)}")
    return method


def default_tau(method: str) -> float:
    """The temperature tau a run of ``method`` gets without ``--tau`` (module docstring).

    Example:
        >>> default_tau("dftopk"), default_tau("lcron-diffsort")
        (0.1, 10.0)
    """
    if method == TFRS_METHOD:
        return TFRS_TAU
    return get_operator(method).cascade_temperature


def tau_name(method: str) -> str:
    """The name of ``method``'s temperature knob tau in its paper (``tau``, ``alpha``, ...).

    Example:
        >>> tau_name("lapsum")
        'alpha'
    """
    return "tau" if method == TFRS_METHOD else get_operator(method).temperature_name


@register_serializable
class TopKCascadeObjective(keras.layers.Layer):
    """LCRON-scheme cascade loss for retrieval + pre-ranking, plus a ranking top-k loss.

    Args:
        method: a top-k operator name (``dftopk_tf.OPERATOR_NAMES``) or the operator itself.
        retrieval_k: k of retrieval's selection in the cascade loss.
        prerank_k: k of pre-ranking's selection in the cascade loss.
        rank_k: k of the ranking stage's loss.
        label_k: ground-truth size (top-``label_k`` by label).
        tau: the operator's temperature-like knob (tau, alpha, steepness, ...); ``temperature=``
            is its deprecated name.
        rank_stage: whether the cascade has a ranking stage to train (False: the paper's
            two-stage cascade, no ranking loss and no ``rank_loss`` output).

    Call: ``objective(labels, outputs)`` with labels [batch, n] (negative = padded) and
    ``outputs`` holding ``retrieval``, ``prerank`` and ``rank`` scores [batch, n]; returns the
    dict of ``output_names``.

    Example:
        >>> objective = TopKCascadeObjective("lapsum", 2, 1, 1, 1, tau=1.0)
        >>> scores = tf.constant([[2.0, 1.0, 0.0]])
        >>> losses = objective(tf.constant([[3.0, 1.0, -1.0]]),
        ...                    {"retrieval": scores, "prerank": scores, "rank": scores})
        >>> sorted(losses) == sorted(objective.output_names)
        True
    """

    def __init__(
        self,
        method: str = "dftopk",
        retrieval_k: int = 10,
        prerank_k: int = 10,
        rank_k: int = 10,
        label_k: int = 10,
        tau: float | None = None,
        rank_stage: bool = True,
        **kwargs,
    ):
        tau = renamed_keyword(kwargs, "temperature", "tau", tau, type(self).__name__)
        # A loss computes in float32 under a mixed precision policy (the stages' scores arrive
        # as float32 already: ``dftopk_cascade.models.cascade``).
        super().__init__(**{"dtype": "float32", **kwargs})
        self.rank_stage = bool(rank_stage)
        self.output_names = _without_rank_loss(
            (
                "loss",
                "retrieval_loss",
                "prerank_loss",
                "joint_loss",
                "rank_loss",
                "retrieval_weight",
                "prerank_weight",
            ),
            self.rank_stage,
        )
        operator = get_operator(method)
        self.method = operator.name
        self.retrieval_k = int(retrieval_k)
        self.prerank_k = int(prerank_k)
        self.rank_k = int(rank_k)
        self.label_k = int(label_k)
        self.tau = float(1.0 if tau is None else tau)
        self.cascade_loss = CascadeTopKLoss(
            operator,
            stage_ks=(self.retrieval_k, self.prerank_k),
            label_k=self.label_k,
            tau=self.tau,
            name="cascade_loss",
        )
        self.rank_loss = TopKSelectionLoss(
            operator,
            k=self.rank_k,
            tau=self.tau,
            label_k=self.label_k,
            reduction="none",
            name="rank_loss",
        )

    def build(self, input_shape=None) -> None:
        # The learned stage weights exist before training, so the optimizer tracks them.
        self.cascade_loss.build(None)
        super().build(input_shape)

    def call(self, labels: tf.Tensor, outputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        cascade = self.cascade_loss(labels, [outputs["retrieval"], outputs["prerank"]])
        losses = {
            "loss": cascade["loss"],
            "retrieval_loss": cascade["stage_losses"][0],
            "prerank_loss": cascade["stage_losses"][1],
            "joint_loss": cascade["joint_loss"],
            "retrieval_weight": cascade["stage_weights"][0],
            "prerank_weight": cascade["stage_weights"][1],
        }
        if self.rank_stage:
            losses["rank_loss"] = tf.reduce_mean(self.rank_loss(labels, outputs["rank"]))
            losses["loss"] += losses["rank_loss"]
        return losses

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "method": self.method,
            "retrieval_k": self.retrieval_k,
            "prerank_k": self.prerank_k,
            "rank_k": self.rank_k,
            "label_k": self.label_k,
            "tau": self.tau,
            "rank_stage": self.rank_stage,
        }

    @classmethod
    def from_config(cls, config: dict) -> "keras.layers.Layer":
        """Also loads a config saved before ``temperature`` was renamed ``tau``."""
        return super().from_config(renamed_keys(config, {"temperature": "tau"}))


@register_serializable
class TFRSObjective(keras.layers.Layer):
    """The TFRS baseline: in-batch sampled softmax for retrieval, pointwise BCE for the others.

    Args:
        label_k: ground-truth size (top-``label_k`` by label): the softmax's positives and the
            BCE's targets.
        tau: the retrieval softmax's temperature (``temperature=`` is its deprecated name).
        rank_stage: whether the cascade has a ranking stage to train.

    Call: ``objective(labels, outputs)`` with labels [batch, n] and ``outputs`` holding
    ``query_embeddings`` [batch, d], ``item_embeddings`` [batch, n, d], and ``prerank`` and
    ``rank`` scores [batch, n]; returns the dict of ``output_names``.

    Example:
        >>> objective = TFRSObjective(label_k=1)
        >>> outputs = {"query_embeddings": tf.ones([2, 2]), "item_embeddings": tf.ones([2, 3, 2]),
        ...            "prerank": tf.zeros([2, 3]), "rank": tf.zeros([2, 3])}
        >>> labels = tf.constant([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        >>> round(float(objective(labels, outputs)["prerank_loss"]), 4)  # log 2: scores all 0
        0.6931
    """

    def __init__(
        self, label_k: int = 10, tau: float | None = None, rank_stage: bool = True, **kwargs
    ):
        tau = renamed_keyword(kwargs, "temperature", "tau", tau, type(self).__name__)
        super().__init__(**{"dtype": "float32", **kwargs})  # float32 under mixed precision
        self.rank_stage = bool(rank_stage)
        self.output_names = _without_rank_loss(
            ("loss", "retrieval_loss", "prerank_loss", "rank_loss"), self.rank_stage
        )
        self.label_k = int(label_k)
        self.tau = float(1.0 if tau is None else tau)
        self.retrieval_task = InBatchSoftmax(self.label_k, self.tau, name="retrieval")
        self.prerank_task = self._pointwise_task("prerank")
        self.rank_task = self._pointwise_task("rank")

    @staticmethod
    def _pointwise_task(name: str) -> tfrs.tasks.Ranking:
        loss = keras.losses.BinaryCrossentropy(from_logits=True, reduction="none")
        return tfrs.tasks.Ranking(loss=loss, name=name)

    def _pointwise_loss(self, task, targets, mask, scores) -> tf.Tensor:
        # One BCE per item ([batch, n, 1] inputs keep the item axis), then the mean over real ones.
        item_losses = task(tf.cast(targets, tf.float32)[..., None], scores[..., None])
        return tf.reduce_mean(masked_request_mean(item_losses, mask))

    def call(self, labels: tf.Tensor, outputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        mask, targets = ground_truth(labels, self.label_k)
        retrieval_loss = self.retrieval_task(
            outputs["query_embeddings"], outputs["item_embeddings"], labels
        )
        prerank_loss = self._pointwise_loss(self.prerank_task, targets, mask, outputs["prerank"])
        losses = {
            "loss": retrieval_loss + prerank_loss,
            "retrieval_loss": retrieval_loss,
            "prerank_loss": prerank_loss,
        }
        if self.rank_stage:
            losses["rank_loss"] = self._pointwise_loss(
                self.rank_task, targets, mask, outputs["rank"]
            )
            losses["loss"] += losses["rank_loss"]
        return losses

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "label_k": self.label_k,
            "tau": self.tau,
            "rank_stage": self.rank_stage,
        }

    @classmethod
    def from_config(cls, config: dict) -> "keras.layers.Layer":
        """Also loads a config saved before ``temperature`` was renamed ``tau``."""
        return super().from_config(renamed_keys(config, {"temperature": "tau"}))


def make_objective(
    method: str,
    retrieval_k: int = 10,
    prerank_k: int = 10,
    rank_k: int = 10,
    label_k: int = 10,
    tau: float | None = None,
    rank_stage: bool = True,
    **kwargs,
) -> TopKCascadeObjective | TFRSObjective:
    """The objective of ``method``; ``tau`` None takes ``default_tau``.

    Without ``rank_stage`` (the paper's two-stage cascade) it has no ranking loss. The method's
    name is resolved once, here. ``temperature=`` is the deprecated name of ``tau``.

    Example:
        >>> type(make_objective("tfrs")).__name__
        'TFRSObjective'
        >>> "rank_loss" in make_objective("dftopk", rank_stage=False).output_names
        False
    """
    tau = renamed_keyword(kwargs, "temperature", "tau", tau, "make_objective")
    if kwargs:
        raise TypeError(f"make_objective: unexpected keyword arguments {sorted(kwargs)}")
    if check_method(method) == TFRS_METHOD:
        tau = TFRS_TAU if tau is None else tau
        return TFRSObjective(label_k, tau, rank_stage, name="objective")
    operator = get_operator(method)
    tau = operator.cascade_temperature if tau is None else tau
    return TopKCascadeObjective(
        operator, retrieval_k, prerank_k, rank_k, label_k, tau, rank_stage, name="objective"
    )


def _without_rank_loss(names: tuple[str, ...], rank_stage: bool) -> tuple[str, ...]:
    """``names`` (an objective's outputs) without ``rank_loss`` when there is no ranking stage."""
    return names if rank_stage else tuple(name for name in names if name != "rank_loss")
