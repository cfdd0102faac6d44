"""Keras layers: ``DFTopK``, the differentiable top-k operator as a layer.

Example:
    >>> layer = DFTopK(k=2, tau=0.5)
    >>> layer(tf.constant([[3.0, 1.0, 2.0, 0.0]])).numpy().round(3)
    array([[0.953, 0.269, 0.731, 0.047]], dtype=float32)
"""

import tensorflow as tf

from dftopk_tf.keras_compat import keras, register_serializable
from dftopk_tf.ops import check_threshold_gradient, dftopk
from dftopk_tf.selection import check_selection, renamed_selection


@register_serializable
class DFTopK(keras.layers.Layer):
    """DFTopK selection probabilities sigmoid((x - theta) / tau) as a Keras layer.

    theta is the midpoint of the k-th and (k+1)-th largest real score of each row.

    Args:
        k: default number of items to select (a call may override it with a per-row tensor, so a
            served model can take k as a request input instead of freezing it at export).
        tau: temperature > 0.
        hard: return the exact 0/1 top-k mask forward, with DFTopK's gradient backward.
        selection: threshold search: ``"auto"`` (default: the path that measured fastest for
            the shape, k, device and XLA, ``dftopk_tf.selection.resolve_selection``),
            ``"radix"`` (the O(n) radix select), ``"bracket"`` (O(n): a sample bracket) or
            ``"top_k"`` (``tf.math.top_k``); values and gradients are the same. (Earlier
            versions named it ``method``; ``from_config`` still reads that key.)
        jit_compile: allow XLA for the operator; set False before exporting for a model server
            without XLA (stock TF Serving).
        threshold_gradient: ``"pair"`` (exact: the threshold's share on the k-th and (k+1)-th
            item) or ``"spread"`` (on every item, by sigmoid'); see ``dftopk_tf.ops``.

    Call arguments:
        scores: float [..., n].
        mask: optional bool [..., n], True for real items (padded items get 0).
        k: optional int scalar or [...] tensor overriding the layer's k.

    Output: float32 [..., n] in [0, 1].

    Example:
        >>> layer = DFTopK(k=1, hard=True)
        >>> layer(tf.constant([[0.1, 0.7, 0.3]])).numpy().tolist()
        [[0.0, 1.0, 0.0]]
    """

    def __init__(
        self,
        k: int = 10,
        tau: float = 1.0,
        hard: bool = False,
        selection: str = "auto",
        jit_compile: bool = True,
        threshold_gradient: str = "pair",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau!r}")
        self.threshold_gradient = check_threshold_gradient(threshold_gradient)
        # The output keeps the input's padding: a Keras mask passes through unchanged.
        self.supports_masking = True
        self.k = k
        self.tau = tau
        self.hard = hard
        self.selection = check_selection(selection)
        self.jit_compile = jit_compile

    def call(
        self, scores: tf.Tensor, mask: tf.Tensor | None = None, k: tf.Tensor | None = None
    ) -> tf.Tensor:
        return dftopk(
            scores,
            self.k if k is None else k,
            tau=self.tau,
            mask=mask,
            hard=self.hard,
            selection=self.selection,
            jit_compile=self.jit_compile,
            threshold_gradient=self.threshold_gradient,
        )

    @classmethod
    def from_config(cls, config: dict) -> "DFTopK":
        """Also reads configs of earlier versions, which named the threshold search ``method``."""
        return cls(**renamed_selection(config))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "k": self.k,
            "tau": self.tau,
            "hard": self.hard,
            "selection": self.selection,
            "jit_compile": self.jit_compile,
            "threshold_gradient": self.threshold_gradient,
        }
