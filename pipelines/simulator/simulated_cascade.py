"""The simulator's recommendation cascade and the users' feedback on what it exposes.

Per request: retrieval draws videos from three channels (the user's favourite categories,
popular videos, uniform) and keeps the best ``retrieved`` by a noisy score; pre-ranking keeps
``prerank_kept`` (the rest are ``prerank_neg``), coarse ranking keeps ``ranked`` (the rest are
``coarse_neg``), ranking orders them (``rank_index``; the top ``rank_pos`` are ``rank_pos``, the
rest ``rank_neg``), re-ranking orders the top ``rerank_size`` (``rerank_index``; its top
``rerank_pos`` are ``rerank_pos``) and the first 1 to ``max_exposed`` are shown (``realshow``).

Every stage scores ``true logit + stage bias[video] + noise``, with less noise at later stages:
the stage bias is each stage model's consistent misjudgement of a video, so a model trained on the
stage labels learns a biased but informative copy of the true preference. RecFlow's funnel (top
500 kept in pre-ranking and coarse ranking) is scaled down to 160 -> 80 -> 20 -> 10.

Recorded per request (``RECORDED``): all ``ranked`` ranking-stage videos, and ``sampled_negatives``
random videos of each of ``coarse_neg`` and ``prerank_neg``, in a random order.

Example:
    >>> rng = np.random.default_rng(0)
    >>> models = StageModels.create(world.size.items, rng)
    >>> outcome = run_cascade(world, models, np.array([0, 1]), np.array([9, 21]), rng)
    >>> outcome.videos.shape
    (2, 40)
"""

from dataclasses import dataclass

import numpy as np
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.simulator.simulated_world import SimulatedWorld

STAGES = ("retrieval", "prerank", "coarse", "rank", "rerank")
STAGE_NOISE = {"retrieval": 1.5, "prerank": 1.2, "coarse": 0.9, "rank": 0.6, "rerank": 0.4}
STAGE_BIAS_SCALE = 0.4
CHANNEL_SHARES = (0.6, 0.25)  # favourite categories, popular; the rest uniform


@dataclass(frozen=True)
class CascadeShape:
    """How many videos each stage draws, keeps and records per request.

    Example:
        >>> CascadeShape().recorded
        40
    """

    retrieval_draws: int = 320
    retrieved: int = 160
    prerank_kept: int = 80
    ranked: int = 20
    rank_pos: int = 10
    rerank_size: int = 14
    rerank_pos: int = 10
    max_exposed: int = 7
    sampled_negatives: int = 10

    @property
    def recorded(self) -> int:
        """Rows recorded in ``all_stage`` per request.

        Example:
            >>> CascadeShape(ranked=30).recorded
            50
        """
        return self.ranked + 2 * self.sampled_negatives


@dataclass(frozen=True)
class StageModels:
    """Each stage's consistent per-video misjudgement, float32 [stages, videos].

    Example:
        >>> StageModels.create(10, np.random.default_rng(0)).video_bias.shape
        (5, 10)
    """

    video_bias: np.ndarray

    @classmethod
    def create(cls, videos: int, rng: np.random.Generator) -> "StageModels":
        """Draws the biases for ``videos`` videos.

        Example:
            >>> StageModels.create(3, np.random.default_rng(0)).video_bias.dtype
            dtype('float32')
        """
        bias = rng.normal(0.0, STAGE_BIAS_SCALE, (len(STAGES), videos))
        return cls(video_bias=bias.astype(np.float32))

    def score(
        self, stage: str, videos: np.ndarray, logits: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Returns the stage's noisy score of ``videos`` given their true ``logits``.

        Example:
            >>> models = StageModels.create(3, np.random.default_rng(0))
            >>> models.score("rank", np.array([[0, 2]]), np.zeros([1, 2]),
            ...              np.random.default_rng(0)).shape
            (1, 2)
        """
        noise = rng.normal(0.0, STAGE_NOISE[stage], logits.shape)
        return logits + self.video_bias[STAGES.index(stage)][videos] + noise


@dataclass(frozen=True)
class CascadeOutcome:
    """The recorded videos of a chunk of requests, [requests, recorded] each.

    Attributes:
        videos: int64 video ids.
        logits: float32 true preference logits.
        rank_index: int64 position in the ranking stage, ``recflow.NOT_RANKED`` if not ranked.
        rerank_index: int64 position in re-ranking, ``recflow.NOT_RANKED`` if not re-ranked.
        flags: bool, one array per ``recflow.STAGE_FLAGS`` name.

    Example:
        >>> outcome.flags[recflow.RANK_POS].sum(axis=1).tolist()
        [10, 10, 10]
    """

    videos: np.ndarray
    logits: np.ndarray
    rank_index: np.ndarray
    rerank_index: np.ndarray
    flags: dict[str, np.ndarray]


def _descending(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-scores, axis=1, kind="stable")


def _split(positions: np.ndarray, scores: np.ndarray, kept: int) -> tuple[np.ndarray, np.ndarray]:
    """Splits ``positions`` [requests, n] into the ``kept`` best by ``scores`` and the rest."""
    order = np.argpartition(-scores, kept - 1, axis=1)
    return _take(positions, order[:, :kept]), _take(positions, order[:, kept:])


def _take(values: np.ndarray, indices: np.ndarray) -> np.ndarray:
    return np.take_along_axis(values, indices, axis=1)


def _duplicates(draws: np.ndarray) -> np.ndarray:
    """True at every repeat of a value already drawn earlier in the row (by sorted order)."""
    order = np.argsort(draws, axis=1, kind="stable")
    ordered = _take(draws, order)
    repeated = np.zeros_like(draws, dtype=bool)
    np.put_along_axis(repeated, order[:, 1:], ordered[:, 1:] == ordered[:, :-1], axis=1)
    return repeated


def _retrieval_draws(
    world: SimulatedWorld, users: np.ndarray, rng: np.random.Generator, shape: CascadeShape
) -> tuple[np.ndarray, np.ndarray]:
    """Draws per request from the three channels; returns (videos, repeated) [requests, draws]."""
    favourite = int(shape.retrieval_draws * CHANNEL_SHARES[0])
    popular = int(shape.retrieval_draws * CHANNEL_SHARES[1])
    uniform = shape.retrieval_draws - favourite - popular
    draws = np.concatenate(
        [
            world.sample_interest_items(users, favourite, rng),
            world.sample_popular_items((len(users), popular), rng),
            rng.integers(0, world.size.items, (len(users), uniform)),
        ],
        axis=1,
    )
    repeated = _duplicates(draws)
    # Rare in a large catalogue: rows with too few distinct videos are redrawn uniformly.
    short = np.flatnonzero((~repeated).sum(axis=1) < shape.retrieved)
    while len(short):
        draws[short] = rng.integers(0, world.size.items, (len(short), shape.retrieval_draws))
        repeated[short] = _duplicates(draws[short])
        short = short[(~repeated[short]).sum(axis=1) < shape.retrieved]
    return draws, repeated


def _stage_flags(
    rank_index: np.ndarray, rerank_index: np.ndarray, exposed: np.ndarray, shape: CascadeShape
) -> dict[str, np.ndarray]:
    """RecFlow's stage flags of the recorded slots (ranked, then the two negative samples)."""
    requests = len(rank_index)
    in_rank = rank_index >= 0
    in_rerank = rerank_index >= 0
    slot = np.arange(shape.recorded)
    return {
        recflow.REALSHOW: in_rerank & (rerank_index < exposed),
        recflow.RERANK_POS: in_rerank & (rerank_index < shape.rerank_pos),
        recflow.RERANK_NEG: rerank_index >= shape.rerank_pos,
        recflow.RANK_POS: in_rank & (rank_index < shape.rank_pos),
        recflow.RANK_NEG: rank_index >= shape.rank_pos,
        recflow.COARSE_NEG: np.broadcast_to(
            (slot >= shape.ranked) & (slot < shape.ranked + shape.sampled_negatives),
            (requests, shape.recorded),
        ),
        recflow.PRERANK_NEG: np.broadcast_to(
            slot >= shape.ranked + shape.sampled_negatives, (requests, shape.recorded)
        ),
    }


def run_cascade(
    world: SimulatedWorld,
    models: StageModels,
    users: np.ndarray,
    hours: np.ndarray,
    rng: np.random.Generator,
    shape: CascadeShape = CascadeShape(),
) -> CascadeOutcome:
    """Runs the cascade for one chunk of requests (``users`` [requests], ``hours`` [requests]).

    Example:
        >>> outcome = run_cascade(world, models, np.array([4]), np.array([20]),
        ...                       np.random.default_rng(0))
        >>> int(outcome.flags[recflow.REALSHOW].sum()) >= 1
        True
    """
    requests = len(users)
    draws, repeated = _retrieval_draws(world, users, rng, shape)
    draw_logits = world.preference_logits(users, draws, hours)
    retrieval = models.score("retrieval", draws, draw_logits, rng)
    retrieval[repeated] = -np.inf
    pool = np.argpartition(-retrieval, shape.retrieved - 1, axis=1)[:, : shape.retrieved]
    videos, logits = _take(draws, pool), _take(draw_logits, pool)

    def score(stage: str, positions: np.ndarray) -> np.ndarray:
        return models.score(stage, _take(videos, positions), _take(logits, positions), rng)

    everything = np.tile(np.arange(shape.retrieved), (requests, 1))
    coarse_input, prerank_neg = _split(everything, score("prerank", everything), shape.prerank_kept)
    ranking_input, coarse_neg = _split(coarse_input, score("coarse", coarse_input), shape.ranked)
    ranked = _take(ranking_input, _descending(score("rank", ranking_input)))
    rerank_input = ranked[:, : shape.rerank_size]
    rerank_order = _descending(score("rerank", rerank_input))
    rerank_index = np.full((requests, shape.ranked), recflow.NOT_RANKED, np.int64)
    np.put_along_axis(
        rerank_index[:, : shape.rerank_size],
        rerank_order,
        np.broadcast_to(np.arange(shape.rerank_size), rerank_order.shape),
        axis=1,
    )

    slots = np.concatenate(
        [
            ranked,
            rng.permuted(coarse_neg, axis=1)[:, : shape.sampled_negatives],
            rng.permuted(prerank_neg, axis=1)[:, : shape.sampled_negatives],
        ],
        axis=1,
    )
    negatives = np.full((requests, 2 * shape.sampled_negatives), recflow.NOT_RANKED, np.int64)
    rank_index = np.concatenate(
        [np.broadcast_to(np.arange(shape.ranked), (requests, shape.ranked)), negatives], axis=1
    )
    rerank_index = np.concatenate([rerank_index, negatives], axis=1)
    exposed = rng.binomial(shape.max_exposed - 1, 0.5, (requests, 1)) + 1
    flags = _stage_flags(rank_index, rerank_index, exposed, shape)
    # Random row order per request, so that no position reveals a stage or a rank.
    shuffle = rng.permuted(np.tile(np.arange(shape.recorded), (requests, 1)), axis=1)
    return CascadeOutcome(
        videos=_take(_take(videos, slots), shuffle),
        logits=_take(_take(logits, slots), shuffle),
        rank_index=_take(rank_index, shuffle),
        rerank_index=_take(rerank_index, shuffle),
        flags={name: _take(flag, shuffle) for name, flag in flags.items()},
    )


def exposure_feedback(
    world: SimulatedWorld, outcome: CascadeOutcome, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Draws the users' feedback on the exposed videos; zero on videos that were not shown.

    An effective view happens with the true preference ``sigmoid(logit)`` and means watching at
    least 30% of the video; a long view means watching all of it; likes, follows, forwards and
    comments follow effective views with small preference-scaled rates.

    Example:
        >>> feedback = exposure_feedback(world, outcome, np.random.default_rng(0))
        >>> sorted(feedback) == sorted(recflow.FEEDBACK_COLUMNS)
        True
    """
    shown = outcome.flags[recflow.REALSHOW]
    preference = 1.0 / (1.0 + np.exp(-outcome.logits))
    effective = shown & (rng.random(shown.shape) < preference)
    fraction = np.where(
        effective, rng.uniform(0.3, 1.6, shown.shape), rng.uniform(0.0, 0.3, shown.shape)
    )
    playing = np.where(shown, world.item_duration[outcome.videos] * fraction, 0).astype(np.int64)

    def follows_view(rate: float) -> np.ndarray:
        return effective & (rng.random(shown.shape) < rate * preference)

    return {
        recflow.PLAYING_TIME: playing,
        recflow.EFFECTIVE_VIEW: effective,
        recflow.LONG_VIEW: shown & (fraction >= 1.0),
        recflow.LIKE: follows_view(0.25),
        recflow.FOLLOW: follows_view(0.05),
        recflow.FORWARD: follows_view(0.03),
        recflow.COMMENT: follows_view(0.06),
    }
