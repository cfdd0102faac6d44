"""How a method's selection enters its cross-entropy, as the method's official code computes it.

Every top-k loss is a cross-entropy per item: a positive weight times the log of the evidence that
the item is selected, plus a negative weight times the log of the evidence that it is not. The
methods differ in that evidence (per stage and for the joint of several stages) and in their
weights; three forms cover them:

- Logit operators (``dftopk``, ``dftopk-spread``, ``bce``), p = sigmoid(logit): log p and
  log(1 - p) by log-sigmoid (BCE with logits); joint log(p_1 p_2) and log(1 - p_1 p_2) in log
  space. The official ``cascade-topk_dftopkjoint`` loss.
- Probability operators (``lapsum``, ``sparse-topk``): log(p + 1e-6) and log(1 - p + 1e-6); joint
  log(p_1 p_2 + 1e-6) and log(1 - p_1 p_2 + 1e-6). The official LapSum loss. The official sparse
  top-k run feeds its mask p to a BCE *with logits* (it scores sigmoid(p), which lies in
  [0.5, 0.73]: no item can be pushed out); we do not copy that and score p like LapSum's.
- LCRON operators (``lcron-*``): the ``top`` and ``bottom`` masses of the relaxed permutation
  matrix over its constant column mass (``dftopk_tf.peers.permutation_topk.rank_masses``):
  log(top + 1e-6) and log(bottom + 1e-6); joint log(top_1 top_2 + 1e-6) and
  log(1 - (1 - bottom_1)(1 - bottom_2) + 1e-6). A stage's term counts only for requests with more
  than k real items (0 otherwise, still counted in the batch mean).

Weights: the labels' top-``label_k`` mask y (positive y, negative 1 - y), except for LCRON, whose
official code sorts the labels with its own relaxed sort at a near-hard temperature (tau 1e-4,
steepness 1000) into a label matrix L and weighs with the mass of L in the first ``label_k`` rows
(positive), in the other rows (stage negative) and clip(1 - positive, 0, 1) (joint negative). Ties
among labels that straddle the top-``label_k`` boundary thus share the boundary (weights 1/2, ...)
rather than going to the lower index.

Padded items take no part in any of it. Where the official code assumes unpadded requests (it
sorts and averages over every slot), these are its formulas on each request's real items.

Example:
    >>> from dftopk_tf.operators import get_operator
    >>> mask = tf.constant([[True, True, True]])
    >>> stage = stage_terms(get_operator("lapsum"), tf.constant([[2.0, 0.0, 1.0]]), 1, mask, 1.0)
    >>> bool(stage.log_selected[0, 0] > stage.log_selected[0, 1])
    True
"""

from collections.abc import Sequence
from typing import NamedTuple

import tensorflow as tf

from dftopk_tf.operators import SelectionOperator
from dftopk_tf.peers.inputs import flatten_k, flatten_scores, restore_shape
from dftopk_tf.peers.permutation_topk import permutation_masses, split_rows

#: Added to every probability and mass before a log, as in the official LapSum and LCRON code.
LOG_EPSILON: float = 1e-6


class StageTerms(NamedTuple):
    """One stage's evidence, ``[..., n]`` each.

    ``log_selected`` / ``log_not_selected`` score positives / negatives in the stage's own loss.
    ``selected`` / ``not_selected`` (top / bottom, or p / 1 - p) feed the joint; None for logit
    operators, whose joint is computed from ``log_selected`` in log space.

    Example:
        >>> from dftopk_tf.operators import get_operator
        >>> scores = tf.constant([[1.0, 0.0]])
        >>> stage_terms(get_operator("dftopk"), scores, 1, None, 1.0).selected is None
        True
    """

    log_selected: tf.Tensor
    log_not_selected: tf.Tensor
    selected: tf.Tensor | None
    not_selected: tf.Tensor | None


class Targets(NamedTuple):
    """Per-item weights ``[..., n]``: positive, stage negative and joint negative.

    Example:
        >>> from dftopk_tf.operators import get_operator
        >>> t = selection_targets(get_operator("bce"), tf.constant([[2.0, 1.0]]),
        ...                       tf.constant([[True, True]]), 1, tf.constant([[True, False]]))
        >>> t.selected.numpy().tolist(), t.not_selected.numpy().tolist()
        ([[1.0, 0.0]], [[0.0, 1.0]])
    """

    selected: tf.Tensor
    not_selected: tf.Tensor
    joint_not_selected: tf.Tensor


def _log1mexp(log_p: tf.Tensor) -> tf.Tensor:
    """log(1 - exp(log_p)) for log_p < 0, accurate on both sides of -log 2."""
    log_p = tf.minimum(log_p, -1e-7)
    return tf.where(
        log_p > -0.6931472,
        tf.math.log(-tf.math.expm1(log_p)),
        tf.math.log1p(-tf.exp(log_p)),
    )


def _mass_terms(selected: tf.Tensor, not_selected: tf.Tensor) -> StageTerms:
    return StageTerms(
        tf.math.log(selected + LOG_EPSILON),
        tf.math.log(not_selected + LOG_EPSILON),
        selected,
        not_selected,
    )


def stage_terms(
    operator: SelectionOperator,
    scores: tf.Tensor,
    k: int | tf.Tensor,
    mask: tf.Tensor | None,
    temperature: float | None = None,
) -> StageTerms:
    """The evidence of one stage's selection by ``operator`` (see the module docstring).

    ``temperature`` None takes the operator's ``default_temperature``.

    Example:
        >>> from dftopk_tf.operators import get_operator
        >>> softsort = get_operator("lcron-softsort")
        >>> terms = stage_terms(softsort, tf.constant([[3.0, 1.0, 2.0]]), 1, None, 0.01)
        >>> tf.exp(terms.log_selected).numpy().round(3).tolist()
        [[1.0, 0.0, 0.0]]
    """
    temperature = operator.default_temperature if temperature is None else temperature
    if operator.logits is not None:
        logits = operator.logits(scores, k, mask, temperature)
        return StageTerms(tf.math.log_sigmoid(logits), tf.math.log_sigmoid(-logits), None, None)
    if operator.permutation is not None:
        top, bottom = permutation_masses(operator.permutation, scores, k, mask, temperature)
        return _mass_terms(top, bottom)
    p = operator.probabilities(scores, k, mask, temperature)
    return _mass_terms(p, 1.0 - p)


def joint_terms(stages: Sequence[StageTerms]) -> tuple[tf.Tensor, tf.Tensor]:
    """(log_selected, log_not_selected) of the joint selection of all ``stages``.

    Example:
        >>> from dftopk_tf.operators import get_operator
        >>> one = stage_terms(get_operator("bce"), tf.constant([[0.0]]), 1, None, 1.0)
        >>> log_p, log_not_p = joint_terms([one, one])
        >>> tf.exp(log_p).numpy().tolist(), tf.exp(log_not_p).numpy().tolist()
        ([[0.25]], [[0.75]])
    """
    if stages[0].selected is None:
        log_selected = tf.add_n([stage.log_selected for stage in stages])
        return log_selected, _log1mexp(log_selected)
    selected, not_selected = stages[0].selected, stages[0].not_selected
    for stage in stages[1:]:
        selected = selected * stage.selected
        # 1 - prod_s (1 - b_s) as u + b (1 - u): no cancellation when it is small (next to the
        # epsilon), where 1 - prod in float32 would be rounded to 6e-8.
        not_selected = not_selected + stage.not_selected * (1.0 - not_selected)
    return tf.math.log(selected + LOG_EPSILON), tf.math.log(not_selected + LOG_EPSILON)


def selection_targets(
    operator: SelectionOperator,
    labels: tf.Tensor,
    mask: tf.Tensor,
    label_k: int,
    top_k_mask: tf.Tensor,
) -> Targets:
    """The weights ``operator``'s official loss gives each item (see the module docstring).

    ``top_k_mask`` is the labels' top-``label_k`` mask (``dftopk_tf.losses.ground_truth``); the
    LCRON operators build theirs from ``labels`` instead.

    Example:
        >>> labels, mask = tf.constant([[3.0, 2.0, 2.0]]), tf.constant([[True, True, True]])
        >>> top2 = tf.constant([[True, True, False]])
        >>> from dftopk_tf.operators import get_operator
        >>> softsort = get_operator("lcron-softsort")
        >>> selection_targets(softsort, labels, mask, 2, top2).selected.numpy().tolist()
        [[1.0, 0.5, 0.5]]
    """
    if operator.permutation is None:
        positive = tf.cast(top_k_mask, tf.float32)
        return Targets(positive, 1.0 - positive, 1.0 - positive)
    rows = flatten_scores(tf.cast(labels, tf.float32), mask)
    matrix = tf.stop_gradient(operator.permutation(rows, operator.label_temperature))
    top, bottom = split_rows(matrix, flatten_k(label_k, rows))
    zeros = tf.zeros_like(top)
    top = tf.where(rows.mask, top, zeros)
    return Targets(
        restore_shape(top, rows),
        restore_shape(tf.where(rows.mask, bottom, zeros), rows),
        restore_shape(tf.where(rows.mask, tf.clip_by_value(1.0 - top, 0.0, 1.0), zeros), rows),
    )


def stage_gate(operator: SelectionOperator, mask: tf.Tensor, k: int | tf.Tensor) -> tf.Tensor:
    """Per-request factor ``[...]`` of a stage's own loss: LCRON's is 1 only with > k real items.

    Example:
        >>> mask = tf.constant([[True, True, False], [True, True, True]])
        >>> from dftopk_tf.operators import get_operator
        >>> stage_gate(get_operator("lcron-neuralsort"), mask, 2).numpy().tolist()
        [0.0, 1.0]
    """
    real_count = tf.reduce_sum(tf.cast(mask, tf.int32), axis=-1)
    if operator.permutation is None:
        return tf.ones_like(real_count, tf.float32)
    return tf.cast(real_count > k, tf.float32)
