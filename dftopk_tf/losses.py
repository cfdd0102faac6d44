"""Top-k selection losses: per stage (``TopKSelectionLoss``) and cascade (``CascadeTopKLoss``).

Every loss is a binary cross-entropy between an operator's selection and the ground-truth top-k
of the labels (``topk_mask(labels, label_k)``, ties to the lower index), averaged over real items,
then over requests, in the form the method's official code computes it
(``dftopk_tf.selection_terms``: log-sigmoid for DFTopK, 1e-6 epsilons for LapSum and sparse
top-k, the LCRON top/bottom masses and label matrix for ``lcron-*``). Labels follow the padding
convention of ``dftopk_tf.masking``: a negative label (``PADDING_LABEL``) marks a padded item,
which changes neither the loss nor any gradient.

Example:
    >>> loss = DFTopKLoss(k=1, tau=0.5)
    >>> labels = tf.constant([[3.0, 1.0, 2.0, -1.0]])
    >>> scores = tf.constant([[2.0, 0.0, 1.0, 9.0]])
    >>> round(float(loss(labels, scores)), 3)
    0.225
"""

import numbers
from collections.abc import Mapping, Sequence

import tensorflow as tf

from dftopk_tf.keras_compat import keras, register_serializable
from dftopk_tf.label_inputs import padded_labels
from dftopk_tf.masking import mask_from_labels
from dftopk_tf.operators import get_operator
from dftopk_tf.ops import check_threshold_gradient
from dftopk_tf.renamed import renamed_keys, renamed_keyword
from dftopk_tf.selection import topk_mask
from dftopk_tf.selection_terms import joint_terms, selection_targets, stage_gate, stage_terms
from dftopk_tf.validation import check_positive


def masked_request_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean of ``values`` [..., n] over real items per request (0 for a request with none).

    Example:
        >>> masked_request_mean(tf.constant([[1.0, 3.0, 8.0]]),
        ...                     tf.constant([[True, True, False]])).numpy().tolist()
        [2.0]
    """
    mask = tf.cast(mask, values.dtype)
    total = tf.reduce_sum(values * mask, axis=-1)
    return tf.math.divide_no_nan(total, tf.reduce_sum(mask, axis=-1))


def binary_cross_entropy(
    targets: tf.Tensor,
    log_p: tf.Tensor,
    log_not_p: tf.Tensor,
    mask: tf.Tensor,
    negative_targets: tf.Tensor | None = None,
) -> tf.Tensor:
    """Per-request BCE from log-evidence, averaged over real items.

    Item i costs ``-(targets_i log_p_i + negative_targets_i log_not_p_i)``; targets may be bool or
    soft weights, ``negative_targets`` defaults to ``1 - targets``.

    Example:
        >>> log_p = tf.math.log(tf.constant([[0.5, 0.5]]))
        >>> bce = binary_cross_entropy(tf.constant([[True, False]]), log_p, log_p,
        ...                            tf.constant([[True, True]]))
        >>> bce.numpy().round(4)
        array([0.6931], dtype=float32)
    """
    targets = tf.cast(targets, log_p.dtype)
    if negative_targets is None:
        negative_targets = 1.0 - targets
    item_loss = -(targets * log_p + negative_targets * log_not_p)
    item_loss = tf.where(mask, item_loss, 0.0)
    return masked_request_mean(item_loss, mask)


def ground_truth(
    labels: tf.Tensor | Mapping[str, tf.Tensor], label_k: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """The padding mask (label >= 0) and the ground-truth top-``label_k`` mask of the labels.

    ``labels`` may also be keras-rs's ``{"labels": ..., "mask": ...}`` (``dftopk_tf.label_inputs``).

    Example:
        >>> mask, targets = ground_truth(tf.constant([[5.0, 7.0, -1.0]]), 1)
        >>> targets.numpy().tolist()
        [[False, True, False]]
    """
    labels = padded_labels(labels)
    mask = mask_from_labels(labels)
    return mask, topk_mask(labels, label_k, mask)


def _is_size(value: object) -> bool:
    """True for an int >= 1 (not a bool, not a float such as 2.5)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def check_labels_shape(labels: tf.Tensor, scores: tf.Tensor) -> None:
    """Raises ``ValueError`` when the labels' (``y_true``) shape is not the scores' (``y_pred``).

    Example:
        >>> check_labels_shape(tf.zeros([2, 3]), tf.zeros([2, 4]))
        Traceback (most recent call last):
        ...
        ValueError: labels (y_true) have shape (2, 3) but the scores (y_pred) have shape (2, 4); ...
    """
    labels_shape, scores_shape = tf.TensorShape(labels.shape), tf.TensorShape(scores.shape)
    if not labels_shape.is_compatible_with(scores_shape):
        raise ValueError(
            f"labels (y_true) have shape {labels_shape} but the scores (y_pred) have shape "
            f"{scores_shape}; a loss needs one label per score, [batch, n]"
        )


def check_temperature(name: str, value: object) -> None:
    """Refuses a temperature that is not None, a tensor or a finite number > 0.

    A string such as ``"1"`` is a ``TypeError`` (it would otherwise reach the operator's
    arithmetic); a number that is not finite and > 0 a ``ValueError``.

    Example:
        >>> check_temperature("tau", "1")
        Traceback (most recent call last):
        ...
        TypeError: tau must be a number > 0 (or a tensor), got '1' (str)
    """
    if value is None or tf.is_tensor(value) or isinstance(value, tf.Variable):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a number > 0 (or a tensor), got {value!r} ({type(value).__name__})"
        )
    check_positive(name, value)


def nan_for_nan_labels(per_request: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """``per_request`` losses [batch], NaN for every request with a NaN label.

    A NaN label is not padding (padding is a negative label): the loss says so as Keras losses
    do, with NaN (``keras.callbacks.TerminateOnNaN`` stops such a run), instead of a silent 0.

    Example:
        >>> labels = tf.constant([[1.0, float("nan")], [1.0, -1.0]])
        >>> nan_for_nan_labels(tf.constant([0.0, 0.5]), labels).numpy().tolist()
        [nan, 0.5]
    """
    has_nan = tf.reduce_any(tf.math.is_nan(labels), axis=-1)
    return tf.where(has_nan, tf.constant(float("nan"), per_request.dtype), per_request)


@register_serializable
class TopKSelectionLoss(keras.losses.Loss):
    """BCE between a top-k operator's selection probabilities and the labels' top-k mask.

    Args:
        method: operator name from ``dftopk_tf.operators`` (``dftopk``, ``lapsum``,
            ``sparse-topk``, ``lcron-neuralsort``, ``lcron-softsort``, ``lcron-diffsort``, ``bce``),
            or the operator itself.
        k: the operator's k (how many items the stage keeps).
        tau: the operator's temperature-like knob (DFTopK tau, LapSum alpha, ...); None for the
            operator's default. ``temperature=`` is its deprecated name.
        label_k: size of the ground-truth top-k (defaults to ``k``).

    Inputs: ``y_true`` labels [batch, n] (negative = padded) or a dict ``{"labels": [batch, n],
    "mask": [batch, n]}`` (True = real item, as in keras-rs), ``y_pred`` scores [batch, n].
    Output: per-request losses [batch], reduced by Keras (mean over the batch by default).

    Example:
        >>> loss = TopKSelectionLoss("lapsum", k=1)
        >>> float(loss(tf.constant([[2.0, 1.0]]), tf.constant([[3.0, 0.0]]))) > 0
        True
    """

    def __init__(
        self,
        method: str = "dftopk",
        k: int = 10,
        tau: float | None = None,
        label_k: int | None = None,
        name: str | None = None,
        **kwargs,
    ):
        tau = renamed_keyword(kwargs, "temperature", "tau", tau, type(self).__name__)
        operator = get_operator(method)
        method = operator.name
        if not _is_size(k) or (label_k is not None and not _is_size(label_k)):
            raise ValueError(f"k and label_k must be >= 1 (ints), got k={k!r}, label_k={label_k!r}")
        check_temperature("tau", tau)
        super().__init__(name=name or f"{method}_loss", **kwargs)
        self.method = method
        # Resolved once here: the calls use the operator itself, not its name.
        self.operator = operator
        self.k = k
        self.tau = tau
        self.label_k = label_k

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        label_k = self.label_k or self.k
        labels = padded_labels(y_true)
        check_labels_shape(labels, y_pred)
        mask, top_k_mask = ground_truth(labels, label_k)
        targets = selection_targets(self.operator, labels, mask, label_k, top_k_mask)
        stage = stage_terms(self.operator, y_pred, self.k, mask, self.tau)
        loss = binary_cross_entropy(
            targets.selected, stage.log_selected, stage.log_not_selected, mask, targets.not_selected
        )
        return nan_for_nan_labels(loss * stage_gate(self.operator, mask, self.k), labels)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "method": self.method,
            "k": self.k,
            "tau": self.tau,
            "label_k": self.label_k,
        }

    @classmethod
    def from_config(cls, config: dict) -> "TopKSelectionLoss":
        """Also loads a config saved before ``temperature`` was renamed ``tau``."""
        return super().from_config(renamed_keys(config, {"temperature": "tau"}))


@register_serializable
class DFTopKLoss(TopKSelectionLoss):
    """DFTopK BCE loss: BCE-with-logits of (x - theta) / tau against the labels' top-k mask.

    Args:
        k: the operator's k.
        tau: DFTopK temperature.
        label_k: size of the ground-truth top-k (defaults to ``k``).
        threshold_gradient: ``"pair"`` (exact, operator ``dftopk``) or ``"spread"`` (operator
            ``dftopk-spread``); see ``dftopk_tf.ops``.

    Example:
        >>> loss = DFTopKLoss(k=2, tau=1.0)
        >>> labels = tf.constant([[3.0, 2.0, 1.0, 0.0]])
        >>> good = loss(labels, tf.constant([[4.0, 3.0, -3.0, -4.0]]))
        >>> bad = loss(labels, tf.constant([[-4.0, -3.0, 3.0, 4.0]]))
        >>> bool(good < bad)
        True
    """

    def __init__(
        self,
        k: int = 10,
        tau: float = 1.0,
        label_k: int | None = None,
        name: str | None = "dftopk_loss",
        threshold_gradient: str = "pair",
        **kwargs,
    ):
        kwargs.pop("method", None)
        check_temperature("tau", tau)
        if tau is None:
            raise TypeError("tau must be a number > 0 (or a tensor), got None")
        check_threshold_gradient(threshold_gradient)
        method = "dftopk" if threshold_gradient == "pair" else "dftopk-spread"
        super().__init__(method, k=k, tau=tau, label_k=label_k, name=name, **kwargs)
        self.threshold_gradient = threshold_gradient

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("method")
        config["threshold_gradient"] = self.threshold_gradient
        return config


@register_serializable
class CascadeTopKLoss(keras.layers.Layer):
    """LCRON-scheme cascade loss: per-stage top-k losses plus a joint loss, with learned weights.

    For stages s = 1..S with scores x_s and selection probabilities p_s = f_{k_s}(x_s):
    L_s = BCE(p_s, y), L_joint = BCE(prod_s p_s, y) and

        total = sum_s 0.5 / w_s^2 * L_s + L_joint + log(prod_s w_s)

    with y the labels' top-``label_k`` mask and w_s learned (stored as log w_s, initialised at 0,
    i.e. w_s = 1). Each BCE takes the method's official form (``dftopk_tf.selection_terms``): for
    LCRON, p_s is the top-row mass, negatives are scored by the bottom-row mass, the joint
    negatives by 1 - prod_s (1 - bottom_s), and y comes from the labels' near-hard sort.
    With ``learn_joint_weight`` the joint term gets its own 0.5 / w_j^2 and log w_j
    (the public TF variant).

    Args:
        method: operator name or operator (see ``TopKSelectionLoss``).
        stage_ks: k of each stage (e.g. ``(10, 10)`` for retrieval and pre-ranking).
        label_k: ground-truth top-k size.
        tau: the operator's knob, one value for all stages or one per stage (``temperature=``
            is its deprecated name).
        learn_joint_weight: give the joint loss a learned weight too.

    Call: ``loss_layer(labels, [stage_1_scores, ..., stage_S_scores])`` with labels [batch, n]
    (negative = padded) and scores [batch, n]; returns a dict with ``loss`` (scalar),
    ``stage_losses`` [S], ``joint_loss`` (scalar) and ``stage_weights`` [S] (the w_s).

    Example:
        >>> cascade = CascadeTopKLoss("dftopk", stage_ks=(2, 1), label_k=1)
        >>> labels = tf.constant([[3.0, 1.0, 2.0]])
        >>> out = cascade(labels, [tf.constant([[1.0, 0.0, 0.5]]), tf.constant([[2.0, 0.0, 1.0]])])
        >>> out["stage_losses"].shape.as_list()
        [2]
    """

    def __init__(
        self,
        method: str = "dftopk",
        stage_ks: Sequence[int] = (10, 10),
        label_k: int = 10,
        tau: float | Sequence[float] | None = None,
        learn_joint_weight: bool = False,
        **kwargs,
    ):
        tau = renamed_keyword(kwargs, "temperature", "tau", tau, type(self).__name__)
        super().__init__(**kwargs)
        operator = get_operator(method)
        method = operator.name
        stage_ks = tuple(int(k) for k in stage_ks)
        if not stage_ks or min(stage_ks) < 1 or label_k < 1:
            raise ValueError(
                f"need stage_ks >= 1 for at least one stage and label_k >= 1, got "
                f"stage_ks={stage_ks}, label_k={label_k}"
            )
        if isinstance(tau, Sequence) and not isinstance(tau, (str, bytes)):
            if len(tau) != len(stage_ks):
                raise ValueError(f"tau has {len(tau)} values for {len(stage_ks)} stages")
            for value in tau:
                check_temperature("tau", value)
        else:
            check_temperature("tau", tau)
        self.method = method
        self.operator = operator
        self.stage_ks = stage_ks
        self.label_k = label_k
        self.tau = list(tau) if isinstance(tau, Sequence) else tau
        self.learn_joint_weight = learn_joint_weight

    def build(self, input_shape=None) -> None:
        weight_count = len(self.stage_ks) + int(self.learn_joint_weight)
        self.log_weights = self.add_weight(
            name="log_weights", shape=(weight_count,), initializer="zeros", trainable=True
        )
        super().build(input_shape)

    def _stage_tau(self, stage: int) -> float | None:
        if isinstance(self.tau, list):
            return self.tau[stage]
        return self.tau

    def call(self, labels: tf.Tensor, stage_scores: Sequence[tf.Tensor]) -> dict[str, tf.Tensor]:
        if len(stage_scores) != len(self.stage_ks):
            raise ValueError(
                f"got scores for {len(stage_scores)} stages, expected {len(self.stage_ks)}"
            )
        labels = padded_labels(labels)
        mask, top_k_mask = ground_truth(labels, self.label_k)
        targets = selection_targets(self.operator, labels, mask, self.label_k, top_k_mask)
        stage_losses, stages = [], []
        for stage, (scores, k) in enumerate(zip(stage_scores, self.stage_ks, strict=True)):
            terms = stage_terms(self.operator, scores, k, mask, self._stage_tau(stage))
            loss = binary_cross_entropy(
                targets.selected,
                terms.log_selected,
                terms.log_not_selected,
                mask,
                targets.not_selected,
            )
            stage_loss = nan_for_nan_labels(loss * stage_gate(self.operator, mask, k), labels)
            stage_losses.append(tf.reduce_mean(stage_loss))
            stages.append(terms)
        joint_log_p, joint_log_not_p = joint_terms(stages)
        joint_loss = tf.reduce_mean(
            nan_for_nan_labels(
                binary_cross_entropy(
                    targets.selected, joint_log_p, joint_log_not_p, mask, targets.joint_not_selected
                ),
                labels,
            )
        )
        stage_losses = tf.stack(stage_losses)
        log_w = tf.cast(self.log_weights, tf.float32)
        stage_log_w = log_w[: len(self.stage_ks)]
        total = tf.reduce_sum(0.5 * tf.exp(-2.0 * stage_log_w) * stage_losses + stage_log_w)
        if self.learn_joint_weight:
            total += 0.5 * tf.exp(-2.0 * log_w[-1]) * joint_loss + log_w[-1]
        else:
            total += joint_loss
        return {
            "loss": total,
            "stage_losses": stage_losses,
            "joint_loss": joint_loss,
            "stage_weights": tf.exp(stage_log_w),
        }

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "method": self.method,
            "stage_ks": list(self.stage_ks),
            "label_k": self.label_k,
            "tau": self.tau,
            "learn_joint_weight": self.learn_joint_weight,
        }

    @classmethod
    def from_config(cls, config: dict) -> "CascadeTopKLoss":
        """Also loads a config saved before ``temperature`` was renamed ``tau``."""
        return super().from_config(renamed_keys(config, {"temperature": "tau"}))


def get_loss(method: str, k: int = 10, tau: float | None = None, **kwargs):
    """The single-stage loss for ``method`` (``DFTopKLoss`` for ``dftopk``).

    ``tau`` None takes the operator's default (1 for DFTopK); ``temperature=`` is its deprecated
    name.

    Example:
        >>> type(get_loss("dftopk", k=5, tau=2.0)).__name__
        'DFTopKLoss'
    """
    tau = renamed_keyword(kwargs, "temperature", "tau", tau, "get_loss")
    if method == "dftopk":
        return DFTopKLoss(k=k, tau=1.0 if tau is None else tau, **kwargs)
    return TopKSelectionLoss(method, k=k, tau=tau, **kwargs)
