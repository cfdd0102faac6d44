"""The simulator's hidden world: users, videos and the true preference between them.

A latent-factor model, built so that every observable feature carries part of the signal:

- A video's latent vector mixes its level-two category's vector (itself a noisy copy of its
  level-one category's), its author's vector (authors mostly publish in one category) and noise;
  it has a quality (which also drives its popularity) and an upload type.
- A user's taste mixes the vectors of a few favourite categories (Dirichlet weights), an
  age x gender prototype, a province prototype and noise. Behaviour sequences are later sampled
  from what users effectively viewed, so the sequence reveals the taste too.
- True preference: ``sigmoid(logit)`` with ``logit = SCALE * taste . video + QUALITY_WEIGHT *
  quality + bias[upload_type, hour bucket] + OFFSET``, the probability of an effective view.

Sizes follow RecFlow's proportions (42K users, about 9M videos, 9.3M requests) scaled to the
number of simulated requests, with floors so that tiny runs still have a usable catalogue.

Example:
    >>> world = SimulatedWorld.create(scaled_world_size(1000), np.random.default_rng(0), 0)
    >>> world.preference_logits(np.array([0]), np.array([[1, 2]]), np.array([20])).shape
    (1, 2)
"""

from dataclasses import dataclass

import numpy as np
from dftopk_cascade.pipelines import recflow

LATENT_DIM = 16
FAVOURITE_CATEGORIES = 4
SCALE = 6.0
QUALITY_WEIGHT = 0.6
OFFSET = -3.0
HOUR_BUCKETS = 4
# RecFlow (RecFlow paper, arXiv 2410.20868): 42K users and about 9M videos for 9.3M requests.
USERS_PER_REQUEST = 42_000 / 9_300_000
ITEMS_PER_REQUEST = 9_000_000 / 9_300_000
MIN_USERS = 200
MIN_ITEMS = 5_000


@dataclass(frozen=True)
class WorldSize:
    """The number of distinct ids of each field (what ``others/id_cnt.pkl`` records).

    Example:
        >>> WorldSize(users=200, items=5000, authors=250, categories_two=50,
        ...           categories_one=5).id_counts()[recflow.VIDEO_ID]
        5000
    """

    users: int
    items: int
    authors: int
    categories_two: int
    categories_one: int
    upload_types: int = 12
    provinces: int = 34
    ages: int = 8
    genders: int = 3

    def id_counts(self) -> dict[str, int]:
        """Returns ``{id field: count}`` in the ``id_cnt.pkl`` format.

        Example:
            >>> scaled_world_size(1000).id_counts()[recflow.GENDER]
            3
        """
        return {
            recflow.USER_ID: self.users,
            recflow.DEVICE_ID: self.users,
            recflow.AGE: self.ages,
            recflow.GENDER: self.genders,
            recflow.PROVINCE: self.provinces,
            recflow.VIDEO_ID: self.items,
            recflow.AUTHOR_ID: self.authors,
            recflow.CATEGORY_LEVEL_ONE: self.categories_one,
            recflow.CATEGORY_LEVEL_TWO: self.categories_two,
            recflow.UPLOAD_TYPE: self.upload_types,
        }


def scaled_world_size(
    total_requests: int, users: int | None = None, items: int | None = None
) -> WorldSize:
    """Returns RecFlow's user and video counts scaled to ``total_requests`` (or the given ones).

    Example:
        >>> scaled_world_size(1_000_000).users
        4516
    """
    if users is None:
        users = max(MIN_USERS, round(total_requests * USERS_PER_REQUEST))
    if items is None:
        items = max(MIN_ITEMS, round(total_requests * ITEMS_PER_REQUEST))
    if users < 1 or items < MIN_ITEMS:
        raise ValueError(f"need at least 1 user and {MIN_ITEMS} videos, got {users} and {items}")
    categories_two = int(np.clip(items // 100, 20, 600))
    return WorldSize(
        users=users,
        items=items,
        authors=max(50, items // 20),
        categories_two=categories_two,
        categories_one=max(5, categories_two // 15),
    )


def _normalize(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def _zipf_choice(rng: np.random.Generator, n: int, size: int, exponent: float) -> np.ndarray:
    """Indices in [0, n) where low indices are much more frequent (rank ~ n * u**exponent)."""
    return np.minimum((n * rng.random(size) ** exponent).astype(np.int64), n - 1)


@dataclass(frozen=True)
class _Catalogue:
    """A world's drawn categories, authors and videos (the first phase of its creation)."""

    category_two_parent: np.ndarray
    category_two_vector: np.ndarray
    item_author: np.ndarray
    item_category_two: np.ndarray
    item_vector: np.ndarray
    item_quality: np.ndarray
    popularity: np.ndarray
    items_by_category: np.ndarray
    category_offsets: np.ndarray

    @classmethod
    def draw(cls, size: WorldSize, rng: np.random.Generator) -> "_Catalogue":
        """Draws the catalogue; ``rng`` then goes on to the users (the order fixes the world)."""
        dim = LATENT_DIM
        category_one_vector = rng.normal(size=(size.categories_one, dim))
        category_two_parent = rng.integers(0, size.categories_one, size.categories_two)
        category_two_vector = _normalize(
            0.5 * category_one_vector[category_two_parent]
            + 0.85 * rng.normal(size=(size.categories_two, dim))
        )
        author_category = _zipf_choice(rng, size.categories_two, size.authors, 1.5)
        author_vector = _normalize(
            category_two_vector[author_category] + 0.6 * rng.normal(size=(size.authors, dim))
        )

        item_author = _zipf_choice(rng, size.authors, size.items, 2.0)
        own_category = rng.random(size.items) < 0.8
        item_category_two = np.where(
            own_category,
            author_category[item_author],
            _zipf_choice(rng, size.categories_two, size.items, 1.5),
        )
        item_vector = _normalize(
            0.8 * category_two_vector[item_category_two]
            + 0.5 * author_vector[item_author]
            + 0.4 * rng.normal(size=(size.items, dim))
        )
        item_quality = rng.normal(size=size.items).astype(np.float32)
        popularity = item_quality + rng.normal(size=size.items)
        items_by_category = np.lexsort((-popularity, item_category_two))
        category_offsets = np.searchsorted(
            item_category_two[items_by_category], np.arange(size.categories_two + 1)
        )
        return cls(
            category_two_parent,
            category_two_vector,
            item_author,
            item_category_two,
            item_vector,
            item_quality,
            popularity,
            items_by_category,
            category_offsets,
        )


def _draw_users(
    size: WorldSize, rng: np.random.Generator, catalogue: _Catalogue
) -> tuple[np.ndarray, ...]:
    """Users' age, gender, province, favourite categories, their weights and taste vectors."""
    dim = LATENT_DIM
    category_sizes = np.diff(catalogue.category_offsets)
    user_favourites = _favourite_categories(rng, category_sizes, size.users)
    prototypes = rng.normal(size=(size.ages * size.genders, dim))
    province_prototypes = rng.normal(size=(size.provinces, dim))
    user_age = rng.integers(0, size.ages, size.users)
    user_gender = rng.integers(0, size.genders, size.users)
    user_province = rng.integers(0, size.provinces, size.users)
    weights = rng.dirichlet(np.full(FAVOURITE_CATEGORIES, 0.5), size.users).astype(np.float32)
    user_taste = _normalize(
        np.einsum("uk,ukd->ud", weights, catalogue.category_two_vector[user_favourites])
        + 0.35 * _normalize(prototypes[user_age * size.genders + user_gender])
        + 0.2 * _normalize(province_prototypes[user_province])
        + 0.2 * rng.normal(size=(size.users, dim))
    )
    return user_age, user_gender, user_province, user_favourites, weights, user_taste


@dataclass
class SimulatedWorld:
    """Users, videos and their latent vectors; see the module docstring for the model.

    Build it with ``SimulatedWorld.create``. Video arrays are indexed by ``video_id``, user
    arrays by ``user_id``.

    Example:
        >>> world = SimulatedWorld.create(scaled_world_size(1000), np.random.default_rng(0), 0)
        >>> world.sample_interest_items(np.array([3]), 4, np.random.default_rng(1)).shape
        (1, 4)
    """

    size: WorldSize
    item_author: np.ndarray
    item_category_two: np.ndarray
    item_category_one: np.ndarray
    item_upload_type: np.ndarray
    item_upload_timestamp: np.ndarray
    item_duration: np.ndarray
    item_quality: np.ndarray
    item_vector: np.ndarray
    items_by_category: np.ndarray
    category_offsets: np.ndarray
    items_by_popularity: np.ndarray
    user_device: np.ndarray
    user_age: np.ndarray
    user_gender: np.ndarray
    user_province: np.ndarray
    user_favourites: np.ndarray
    user_favourite_weights: np.ndarray
    user_taste: np.ndarray
    user_activity: np.ndarray
    type_hour_bias: np.ndarray

    @classmethod
    def create(
        cls, size: WorldSize, rng: np.random.Generator, start_epoch: int
    ) -> "SimulatedWorld":
        """Draws a world of the given size; videos are uploaded before ``start_epoch`` (seconds).

        Example:
            >>> SimulatedWorld.create(scaled_world_size(10), np.random.default_rng(0), 0).size.users
            200
        """
        catalogue = _Catalogue.draw(size, rng)
        user_age, user_gender, user_province, user_favourites, weights, user_taste = _draw_users(
            size, rng, catalogue
        )
        return cls(
            size=size,
            item_author=catalogue.item_author,
            item_category_two=catalogue.item_category_two,
            item_category_one=catalogue.category_two_parent[catalogue.item_category_two],
            item_upload_type=_zipf_choice(rng, size.upload_types, size.items, 2.0),
            item_upload_timestamp=start_epoch
            - 60
            - rng.exponential(30 * 86_400, size.items).astype(np.int64),
            item_duration=np.clip(
                rng.lognormal(np.log(30_000), 0.8, size.items), 3_000, 1_200_000
            ).astype(np.int64),
            item_quality=catalogue.item_quality,
            item_vector=catalogue.item_vector,
            items_by_category=catalogue.items_by_category,
            category_offsets=catalogue.category_offsets,
            items_by_popularity=np.argsort(-catalogue.popularity),
            user_device=rng.permutation(size.users),
            user_age=user_age,
            user_gender=user_gender,
            user_province=user_province,
            user_favourites=user_favourites,
            user_favourite_weights=weights,
            user_taste=user_taste,
            user_activity=rng.lognormal(0.0, 1.0, size.users),
            type_hour_bias=rng.normal(0.0, 0.4, (size.upload_types, HOUR_BUCKETS)).astype(
                np.float32
            ),
        )

    def preference_logits(
        self, users: np.ndarray, items: np.ndarray, hours: np.ndarray
    ) -> np.ndarray:
        """Returns the true preference logits float32 [requests, m] of ``items`` [requests, m].

        Args:
            users: int [requests], the requesting users.
            items: int [requests, m], video ids.
            hours: int [requests], the request's hour of day (0-23, RecFlow time).

        Example:
            >>> world = SimulatedWorld.create(scaled_world_size(1), np.random.default_rng(0), 0)
            >>> world.preference_logits(np.array([0]), np.array([[5]]), np.array([9])).dtype
            dtype('float32')
        """
        affinity = np.einsum("rd,rmd->rm", self.user_taste[users], self.item_vector[items])
        bucket = (np.asarray(hours) * HOUR_BUCKETS // 24)[:, None]
        return (
            SCALE * affinity
            + QUALITY_WEIGHT * self.item_quality[items]
            + self.type_hour_bias[self.item_upload_type[items], bucket]
            + OFFSET
        ).astype(np.float32)

    def sample_interest_items(
        self, users: np.ndarray, count: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Draws ``count`` videos per user from its favourite categories (popular ones first).

        Example:
            >>> world = SimulatedWorld.create(scaled_world_size(1), np.random.default_rng(0), 0)
            >>> world.sample_interest_items(np.array([0, 1]), 3, np.random.default_rng(0)).shape
            (2, 3)
        """
        cumulative = np.cumsum(self.user_favourite_weights[users], axis=1)
        draws = rng.random((len(users), count)) * cumulative[:, -1:]
        favourite = (draws[:, :, None] > cumulative[:, None, :]).sum(axis=2)
        favourite = np.minimum(favourite, FAVOURITE_CATEGORIES - 1)
        categories = np.take_along_axis(self.user_favourites[users], favourite, axis=1)
        start = self.category_offsets[categories]
        sizes = self.category_offsets[categories + 1] - start
        within = (sizes * rng.random((len(users), count)) ** 2).astype(np.int64)
        return self.items_by_category[start + np.minimum(within, sizes - 1)]

    def sample_popular_items(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """Draws videos with a power-law preference for popular ones.

        Example:
            >>> world = SimulatedWorld.create(scaled_world_size(1), np.random.default_rng(0), 0)
            >>> world.sample_popular_items((2, 3), np.random.default_rng(0)).shape
            (2, 3)
        """
        ranks = _zipf_choice(rng, self.size.items, int(np.prod(shape)), 3.0)
        return self.items_by_popularity[ranks].reshape(shape)


def _favourite_categories(
    rng: np.random.Generator, category_sizes: np.ndarray, users: int
) -> np.ndarray:
    """Favourite level-two categories per user, among non-empty ones, larger ones more often."""
    non_empty = np.flatnonzero(category_sizes)
    weights = np.sqrt(category_sizes[non_empty].astype(np.float64))
    cumulative = np.cumsum(weights / weights.sum())
    draws = rng.random((users, FAVOURITE_CATEGORIES))
    picks = np.minimum(np.searchsorted(cumulative, draws, side="right"), len(non_empty) - 1)
    return non_empty[picks]
