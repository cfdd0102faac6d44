"""One registry of top-k selection operators, by stable name: DFTopK and its peers.

Every operator maps scores [..., n], k and a padding mask to selection probabilities in [0, 1].
Each has one temperature-like knob under its own name in the paper it comes from (``tau``,
``alpha``, ``regularization``, ``steepness``); the losses take it uniformly as ``tau`` so that
training scripts select a method with ``--method NAME --tau T`` (the registry's fields keep the
descriptive names ``temperature_name``, ``default_temperature`` and ``cascade_temperature``).
``dftopk-spread`` is DFTopK with ``threshold_gradient="spread"`` (same forward; the threshold's
gradient share spread over every item, ``dftopk_tf.ops``). The ``lcron-*`` operators also carry
their relaxed permutation matrix and the near-hard temperature at which the official LCRON code
sorts the labels; their losses are the official LCRON ones (``dftopk_tf.selection_terms``).

Example:
    >>> operator = get_operator("lapsum")
    >>> operator.temperature_name, operator.default_temperature
    ('alpha', 5.0)
    >>> p = operator.probabilities(tf.constant([[2.0, 0.0, 1.0]]), 1, None, 5.0)
    >>> p.shape.as_list()
    [1, 3]
"""

from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

from dftopk_tf import peers
from dftopk_tf.ops import dftopk, dftopk_logits
from dftopk_tf.peers.diffsort import diffsort_rows
from dftopk_tf.peers.inputs import PeerRows
from dftopk_tf.peers.neuralsort import neuralsort_rows
from dftopk_tf.peers.softsort import softsort_rows

Probabilities = Callable[[tf.Tensor, "int | tf.Tensor", "tf.Tensor | None", float], tf.Tensor]
Permutation = Callable[[PeerRows, float], tf.Tensor]


@dataclass(frozen=True)
class SelectionOperator:
    """A named top-k selection operator and its temperature knob.

    Attributes:
        name: registry name (``--method``).
        probabilities: ``(scores, k, mask, temperature) -> probabilities [..., n]``.
        logits: for operators of the form sigmoid(logits), ``(scores, k, mask, temperature) ->
            logits``, so that losses can use the stable with-logits BCE; else None.
        temperature_name: the knob's name in the operator's paper.
        default_temperature: the knob's default in this library (losses and benchmarks given no
            temperature): the public runs' setting for the peers (LapSum alpha 5, NeuralSort and
            SoftSort tau 50, DiffSort steepness 10, sparse top-k l = 1); 1.0 for DFTopK and the
            sigmoid, the operators' own ``tau=1.0`` (the public DFTopK run's tau = 500 suits its
            raw dot products in the hundreds).
        cascade_temperature: the knob's default in the cascade models (``models``, ``--method``
            without ``--temperature``), set for their score scale: 0.1 for every temperature, 10
            for DiffSort's steepness (an inverse temperature); ``dftopk_cascade.models.objectives``
            says why.
        cost: the operator's asymptotic cost per row, for reports.
        permutation: for the LCRON operators, ``(rows, temperature) -> P [batch, n, n]`` (rows =
            ranks); None for the others.
        label_temperature: the knob at which the official LCRON code sorts the labels (tau 1e-4,
            steepness 1000); None for the non-LCRON operators.

    Example:
        >>> get_operator("dftopk").cost
        'O(n)'
    """

    name: str
    probabilities: Probabilities
    logits: Probabilities | None
    temperature_name: str
    default_temperature: float
    cascade_temperature: float
    cost: str
    permutation: Permutation | None = None
    label_temperature: float | None = None


def _dftopk_operator(name: str, threshold_gradient: str) -> SelectionOperator:
    """DFTopK (with logits for stable BCE) under ``name``, with the given threshold gradient."""

    def probabilities(scores, k, mask, temperature):
        return dftopk(scores, k, tau=temperature, mask=mask, threshold_gradient=threshold_gradient)

    def logits(scores, k, mask, temperature):
        return dftopk_logits(
            scores, k, tau=temperature, mask=mask, threshold_gradient=threshold_gradient
        )

    return SelectionOperator(name, probabilities, logits, "tau", 1.0, 0.1, "O(n)")


def _sigmoid_logits(scores, k, mask, temperature):
    del k, mask  # Pointwise: every item is scored on its own.
    return tf.cast(scores, tf.float32) / temperature


_OPERATORS: dict[str, SelectionOperator] = {
    op.name: op
    for op in (
        _dftopk_operator("dftopk", "pair"),
        _dftopk_operator("dftopk-spread", "spread"),
        SelectionOperator(
            "lapsum",
            lambda s, k, m, t: peers.lapsum(s, k, mask=m, alpha=t),
            None,
            "alpha",
            5.0,
            0.1,
            "O(n log n)",
        ),
        SelectionOperator(
            "sparse-topk",
            lambda s, k, m, t: peers.sparse_topk(s, k, mask=m, regularization=t),
            None,
            "regularization",
            1.0,
            0.1,
            "O(n log n)",
        ),
        SelectionOperator(
            "lcron-neuralsort",
            lambda s, k, m, t: peers.lcron_neuralsort(s, k, mask=m, tau=t),
            None,
            "tau",
            50.0,
            0.1,
            "O(n^2)",
            neuralsort_rows,
            1e-4,
        ),
        SelectionOperator(
            "lcron-softsort",
            lambda s, k, m, t: peers.lcron_softsort(s, k, mask=m, tau=t),
            None,
            "tau",
            50.0,
            0.1,
            "O(n^2)",
            softsort_rows,
            1e-4,
        ),
        SelectionOperator(
            "lcron-diffsort",
            lambda s, k, m, t: peers.lcron_diffsort(s, k, mask=m, steepness=t),
            None,
            "steepness",
            10.0,
            10.0,
            "O(n^3)",
            diffsort_rows,
            1000.0,
        ),
        SelectionOperator(
            "bce",
            lambda s, k, m, t: peers.sigmoid_selection(s, k, mask=m, tau=t),
            _sigmoid_logits,
            "tau",
            1.0,
            0.1,
            "O(n)",
        ),
    )
}

#: Every registered operator name, in a stable order.
OPERATOR_NAMES: tuple[str, ...] = tuple(_OPERATORS)


def get_operator(name: "str | SelectionOperator") -> SelectionOperator:
    """Returns the registered operator ``name``; ``ValueError`` lists the names otherwise.

    An operator already resolved is returned as it is, so that a caller that resolved a name
    once can pass the operator on (``dftopk_cascade.models.objectives.make_objective``).

    Example:
        >>> get_operator("dftopk").temperature_name
        'tau'
        >>> get_operator(get_operator("lapsum")).name
        'lapsum'
    """
    if isinstance(name, SelectionOperator):
        return name
    try:
        return _OPERATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown top-k method {name!r}; expected one of {', '.join(OPERATOR_NAMES)}"
        ) from None
