"""The official runs' temperatures at our score scale: ``python -m experiments.temperature_scale``.

A temperature divides score differences, so it only means something against the scale of the
scores. The official DFTopK/LCRON runs (tau 500 for DFTopK, 50 for NeuralSort and SoftSort,
alpha 5 for LapSum, steepness 10 for DiffSort) start from the official models: embeddings
N(0, 1) (torch's ``nn.Embedding`` default) and torch's default ``nn.Linear`` start, weights and
biases U(+-1/sqrt(fan_in)). Our towers start from Keras's defaults (Glorot-uniform kernels, zero
biases) and, with ``--embedding-init uniform``, embeddings U(+-0.05).

This module measures both starts on the same batch of requests (the ids of our data):

- the official retrieval (DSSM: user MLP 13d -> 128 -> 64 -> 32 over the context, user and the
  mean of the behaviour sequence; item MLP 8d -> 128 -> 64 -> 32; dot product) and pre-ranking
  (DIN: softmax target attention over the sequence with a 10d -> 80 -> 1 MLP, then
  21d -> 128 -> 128 -> 32 -> 1) at their initial weights, written here in NumPy from the
  published architecture (d = 8);
- our ``CascadeModel`` at its initial weights, for each ``--embedding-init``;

as the mean over requests of the standard deviation of a request's initial scores (its real
candidates). A method's official temperature maps to ours by the ratio of the two spreads (the
geometric mean of the retrieval and pre-ranking ratios: one temperature serves both stages of the
cascade loss), divided instead of multiplied for an inverse temperature (DiffSort's steepness).

Example::

    python -m experiments.temperature_scale --data /tmp/tfrec --day 2024-01-13
"""

import argparse
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from dftopk_cascade.command_line.entry import add_entry_flags, run_command

#: The official runs' temperature of each method (``shared/REFERENCE.md``, run settings); DFTopK's
#: variants share its tau; BCE and TFRS have no official run (their sigmoid/softmax at 1).
OFFICIAL_TEMPERATURES: dict[str, float] = {
    "dftopk": 500.0,
    "dftopk-spread": 500.0,
    "lcron-neuralsort": 50.0,
    "lcron-softsort": 50.0,
    "lcron-diffsort": 10.0,
    "lapsum": 5.0,
    "sparse-topk": 1.0,
    "bce": 1.0,
    "tfrs": 1.0,
}
#: Methods whose knob is an inverse temperature (larger = harder).
INVERSE_TEMPERATURES: frozenset[str] = frozenset({"lcron-diffsort"})
EMBEDDING_DIM = 8


@dataclass(frozen=True)
class ScoreSpread:
    """Mean per-request standard deviation of the initial scores, per stage.

    Example:
        >>> ScoreSpread(retrieval=2.0, prerank=8.0).geometric_mean()
        4.0
    """

    retrieval: float
    prerank: float

    def geometric_mean(self) -> float:
        """The geometric mean of the two stages' spreads.

        Example:
            >>> ScoreSpread(1.0, 1.0).geometric_mean()
            1.0
        """
        return math.sqrt(self.retrieval * self.prerank)


def request_spread(scores: np.ndarray, real: np.ndarray) -> float:
    """Mean over requests of the standard deviation of each request's real candidates' scores.

    Example:
        >>> request_spread(np.array([[0.0, 2.0, 9.0]]), np.array([[True, True, False]]))
        1.0
    """
    spreads = [np.std(row[mask]) for row, mask in zip(scores, real, strict=True) if mask.sum() > 1]
    return float(np.mean(spreads))


class _TorchDefaultStart:
    """Draws weights as torch's defaults do: embeddings N(0, 1), Linear U(+-1/sqrt(fan_in))."""

    def __init__(self, seed: int):
        self.random = np.random.default_rng(seed)

    def table(self, size: int) -> np.ndarray:
        return self.random.standard_normal((size, EMBEDDING_DIM)).astype(np.float32)

    def mlp(self, sizes: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        layers = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            bound = 1.0 / math.sqrt(fan_in)
            kernel = self.random.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32)
            bias = self.random.uniform(-bound, bound, fan_out).astype(np.float32)
            layers.append((kernel, bias))
        return layers


def _apply_mlp(layers: list[tuple[np.ndarray, np.ndarray]], values: np.ndarray) -> np.ndarray:
    for index, (kernel, bias) in enumerate(layers):
        values = values @ kernel + bias
        if index < len(layers) - 1:
            values = np.maximum(values, 0.0)
    return values


def official_start_spread(
    features: Mapping[str, np.ndarray],
    vocab_sizes: Mapping[str, int],
    columns: Mapping[str, Sequence[str]],
    seed: int = 42,
) -> ScoreSpread:
    """The official retrieval and pre-ranking models' initial score spread on ``features``.

    ``features`` holds a contract batch as NumPy (``context`` [b, 3], ``user`` [b, 5], ``seq``
    [b, 50, 5], ``seq_mask`` [b, 50], ``items`` [b, n, 8], ``item_mask`` [b, n]); one N(0, 1)
    table per id field, shared by the sequence and the candidates as in the official models.

    Example:
        >>> from dftopk_cascade.models.contract import zero_features
        >>> from dftopk_cascade.models.config import example_schema
        >>> batch = {name: np.asarray(value) for name, value in zero_features(2).items()}
        >>> batch["items"] = np.random.default_rng(0).integers(1, 9, batch["items"].shape)
        >>> batch["item_mask"] = np.ones(batch["item_mask"].shape, bool)
        >>> official_start_spread(batch, **example_schema()).retrieval > 0
        True
    """
    start = _TorchDefaultStart(seed)
    tables = {field: start.table(size) for field, size in vocab_sizes.items()}

    def embed(group: str, ids: np.ndarray) -> np.ndarray:
        fields = columns[group]
        parts = [
            tables[field][np.clip(ids[..., i], 0, len(tables[field]) - 1)]
            for i, field in enumerate(fields)
        ]
        return np.concatenate(parts, axis=-1)

    d = EMBEDDING_DIM
    context = embed("context", features["context"])  # [b, 3d]
    user = embed("user", features["user"])  # [b, 5d]
    seq = embed("seq", features["seq"])  # [b, 50, 5d]
    items = embed("items", features["items"])  # [b, n, 8d]
    seq_mask = np.asarray(features["seq_mask"], bool)
    real = np.asarray(features["item_mask"], bool)
    length = np.maximum(seq_mask.sum(axis=1, keepdims=True), 1)
    seq_mean = (seq * seq_mask[..., None]).sum(axis=1) / length  # [b, 5d]

    user_tower = start.mlp([13 * d, 128, 64, 32])
    item_tower = start.mlp([8 * d, 128, 64, 32])
    user_vector = _apply_mlp(user_tower, np.concatenate([context, user, seq_mean], axis=-1))
    item_vectors = _apply_mlp(item_tower, items)
    retrieval = np.einsum("bd,bnd->bn", user_vector, item_vectors)

    attention = start.mlp([10 * d, 80, 1])
    prerank_mlp = start.mlp([21 * d, 128, 128, 32, 1])
    video = items[..., : 5 * d]  # [b, n, 5d]
    pairs = np.concatenate(
        [
            np.broadcast_to(seq[:, None], (*video.shape[:2], *seq.shape[1:])),
            np.broadcast_to(video[:, :, None], (*video.shape[:2], seq.shape[1], 5 * d)),
        ],
        axis=-1,
    )  # [b, n, 50, 10d]
    logits = _apply_mlp(attention, pairs)[..., 0]
    logits = np.where(seq_mask[:, None, :], logits, -(2.0**30) + 1)
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    interest = np.einsum("bns,bsd->bnd", weights, seq)  # [b, n, 5d]
    request = np.concatenate([context, user], axis=-1)  # the official user side: 8d
    prerank_input = np.concatenate(
        [np.broadcast_to(request[:, None], (*video.shape[:2], 8 * d)), interest, items], axis=-1
    )
    prerank = _apply_mlp(prerank_mlp, prerank_input)[..., 0]
    return ScoreSpread(request_spread(retrieval, real), request_spread(prerank, real))


def our_start_spread(
    features: Mapping[str, "object"], schema: Mapping, embedding_init: str, seed: int = 42
) -> ScoreSpread:
    """Our cascade's initial score spread on ``features`` (a contract batch of tensors).

    Example::

        our_start_spread(features, read_data_schema("/tmp/tfrec"), "normal")
    """
    from dftopk_cascade.models.cascade import build_cascade
    from dftopk_cascade.models.config import CascadeConfig
    from dftopk_cascade.models.tf_keras import keras

    keras.utils.set_random_seed(seed)
    model = build_cascade(CascadeConfig.from_schema(schema, embedding_init=embedding_init))
    scores = model(dict(features))
    real = np.asarray(features["item_mask"], bool)
    return ScoreSpread(
        request_spread(scores["retrieval"].numpy(), real),
        request_spread(scores["prerank"].numpy(), real),
    )


def mapped_temperature(method: str, ours: ScoreSpread, official: ScoreSpread) -> float:
    """``method``'s official temperature at our score scale (see the module docstring).

    Example:
        >>> mapped_temperature("dftopk", ScoreSpread(0.1, 0.1), ScoreSpread(10.0, 10.0))
        5.0
        >>> mapped_temperature("lcron-diffsort", ScoreSpread(0.1, 0.1), ScoreSpread(10.0, 10.0))
        1000.0
    """
    ratio = ours.geometric_mean() / official.geometric_mean()
    official_value = OFFICIAL_TEMPERATURES[method]
    return official_value / ratio if method in INVERSE_TEMPERATURES else official_value * ratio


def measure(data_dir: str, day: str, requests: int = 256, seed: int = 42) -> dict[str, ScoreSpread]:
    """The official start's and each of our embedding starts' spreads on ``requests`` of ``day``.

    Example::

        measure("/tmp/tfrec", "2024-01-13")["official"].retrieval
    """
    from dftopk_cascade.models.embeddings import EMBEDDING_INITS
    from dftopk_cascade.models.training.data import evaluation_dataset
    from dftopk_cascade.pipelines.data_schema import read_data_schema

    schema = read_data_schema(data_dir)
    features, _ = next(iter(evaluation_dataset(data_dir, [day], requests, 0, seed)))
    numpy_features = {name: value.numpy() for name, value in features.items()}
    spreads = {
        "official": official_start_spread(
            numpy_features, schema["vocab_sizes"], schema["columns"], seed
        )
    }
    for init in EMBEDDING_INITS:
        spreads[init] = our_start_spread(features, schema, init, seed)
    return spreads


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Prints the spreads and every method's mapped temperature per embedding start.

    Returns {embedding init: {method: mapped temperature}}.

    Example::

        python -m experiments.temperature_scale --data /tmp/tfrec --day 2024-01-13
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="converted TFRecord folder")
    parser.add_argument("--day", required=True, help="the day whose first requests are scored")
    parser.add_argument("--requests", type=int, default=256, help="requests scored")
    parser.add_argument("--seed", type=int, default=42, help="seed of both starts")
    args = add_entry_flags(parser).parse_args(argv)
    spreads = measure(args.data, args.day, args.requests, args.seed)
    print(f"initial score spread (mean per-request std, {args.requests} requests of {args.day}):")
    for name, spread in spreads.items():
        print(f"  {name:>9}: retrieval {spread.retrieval:.4g}, pre-ranking {spread.prerank:.4g}")
    mapped = {
        init: {
            method: mapped_temperature(method, spreads[init], spreads["official"])
            for method in OFFICIAL_TEMPERATURES
        }
        for init in spreads
        if init != "official"
    }
    print("official temperature -> ours (" + ", ".join(mapped) + "):")
    for method, official in OFFICIAL_TEMPERATURES.items():
        values = ", ".join(f"{mapped[init][method]:.3g}" for init in mapped)
        print(f"  {method:>17}: {official:g} -> {values}")
    return mapped


if __name__ == "__main__":
    run_command(main, "python -m experiments.temperature_scale")
