"""A small synthetic catalogue and request log in the serving contract's feature layout.

Items have the 8 ``ITEM_FIELDS`` (video, author, category two, category one, upload type, upload
weekday/hour/minute), requests the ``context`` [3], ``user`` [5], ``seq`` [50, 5] and ``seq_mask``
[50] of ``dftopk_cascade.serving.signatures``; every id is shifted by + 1 (0 = padding), as in the
TFRecords. A hidden latent-factor model decides what a user likes: a video's vector is its
category's plus its author's plus noise; a user's taste mixes two favourite categories plus noise.
The true relevance of a video to a user is ``sigmoid(taste . video)`` (in (0, 1), used as the label
by the metrics); a request's history and its ``POSITIVES`` engaged videos are drawn by relevance.

Example:
    >>> catalogue = SyntheticCatalogue.create(np.random.default_rng(0), users=20, items=60)
    >>> log = catalogue.requests(np.random.default_rng(1), count=8)
    >>> log["positives"].shape, catalogue.relevance(log["user"][:, 0] - 1).shape
    ((8, 4, 8), (8, 60))
"""

from dataclasses import dataclass

import numpy as np

LATENT_DIM = 8
CATEGORIES_ONE = 4
CATEGORIES_TWO = 12
AUTHORS = 40
SEQUENCE_LENGTH = 50
POSITIVES = 4
#: Sharpness of the draws of histories and positives by true relevance.
CHOICE_SHARPNESS = 3.0
#: Vocabulary size (padding 0 included) of the context fields: weekday, hour, minute.
CONTEXT_VOCABULARY = (8, 25, 61)


@dataclass(frozen=True)
class SyntheticCatalogue:
    """Users, items and the hidden preference between them.

    Attributes:
        items: int32 [items, 8], the catalogue's item features (row r is video id r + 1).
        users: int32 [users, 5], each user's features (row u is user id u + 1).
        video_vectors: float [items, LATENT_DIM], hidden.
        tastes: float [users, LATENT_DIM], hidden.

    Example:
        >>> SyntheticCatalogue.create(np.random.default_rng(0), users=5, items=30).items.shape
        (30, 8)
    """

    items: np.ndarray
    users: np.ndarray
    video_vectors: np.ndarray
    tastes: np.ndarray

    @classmethod
    def create(cls, rng: np.random.Generator, users: int, items: int) -> "SyntheticCatalogue":
        """Draws a catalogue of ``items`` videos and ``users`` users.

        Example:
            >>> SyntheticCatalogue.create(np.random.default_rng(0), users=5, items=30).users[0, 0]
            np.int32(1)
        """
        category_vectors = rng.normal(size=(CATEGORIES_TWO, LATENT_DIM))
        author_categories = rng.integers(0, CATEGORIES_TWO, AUTHORS)
        author_vectors = 0.5 * rng.normal(size=(AUTHORS, LATENT_DIM))
        authors = rng.integers(0, AUTHORS, items)
        own_category = rng.random(items) < 0.8
        categories = np.where(
            own_category, author_categories[authors], rng.integers(0, CATEGORIES_TWO, items)
        )
        video_vectors = (
            category_vectors[categories]
            + author_vectors[authors]
            + 0.3 * rng.normal(size=(items, LATENT_DIM))
        )
        item_fields = np.stack(
            [
                np.arange(items),
                authors,
                categories,
                categories * CATEGORIES_ONE // CATEGORIES_TWO,
                rng.integers(0, 3, items),
                rng.integers(0, 7, items),
                rng.integers(0, 24, items),
                rng.integers(0, 60, items),
            ],
            axis=1,
        )
        favourites = rng.integers(0, CATEGORIES_TWO, size=(users, 2))
        mix = rng.dirichlet([1.0, 1.0], size=users)
        tastes = (
            mix[:, :1] * category_vectors[favourites[:, 0]]
            + mix[:, 1:] * category_vectors[favourites[:, 1]]
            + 0.3 * rng.normal(size=(users, LATENT_DIM))
        )
        user_fields = np.stack(
            [
                np.arange(users),
                rng.integers(0, 8, users),
                rng.integers(0, 2, users),
                rng.integers(0, 7, users),
                rng.integers(0, 10, users),
            ],
            axis=1,
        )
        return cls(
            items=(item_fields + 1).astype(np.int32),
            users=(user_fields + 1).astype(np.int32),
            video_vectors=video_vectors / np.sqrt(LATENT_DIM),
            tastes=tastes,
        )

    def item_vocabulary(self) -> list[int]:
        """Vocabulary size (padding 0 included) of each of the 8 item fields.

        Example:
            >>> SyntheticCatalogue.create(np.random.default_rng(0), 5, 30).item_vocabulary()[0]
            31
        """
        return [int(size) for size in self.items.max(axis=0) + 1]

    def user_vocabulary(self) -> list[int]:
        """Vocabulary size (padding 0 included) of each of the 5 user fields.

        Example:
            >>> SyntheticCatalogue.create(np.random.default_rng(0), 5, 30).user_vocabulary()[0]
            6
        """
        return [int(size) for size in self.users.max(axis=0) + 1]

    def relevance(self, user_rows: np.ndarray) -> np.ndarray:
        """True relevance in (0, 1) of every video to each user: float32 [len(user_rows), items].

        Example:
            >>> catalogue = SyntheticCatalogue.create(np.random.default_rng(0), users=5, items=30)
            >>> bool((catalogue.relevance(np.array([0, 1])) > 0).all())
            True
        """
        logits = self.tastes[user_rows] @ self.video_vectors.T
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    def requests(self, rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
        """``count`` logged requests: the contract's request features plus ``positives``.

        ``positives`` int32 [count, POSITIVES, 8] are the item features of the videos engaged
        with (distinct within a request); histories have 5 to 50 real rows.

        Example:
            >>> catalogue = SyntheticCatalogue.create(np.random.default_rng(0), users=5, items=30)
            >>> sorted(catalogue.requests(np.random.default_rng(1), count=2))
            ['context', 'positives', 'seq', 'seq_mask', 'user']
        """
        user_rows = rng.integers(0, len(self.users), count)
        weights = np.exp(CHOICE_SHARPNESS * self.tastes[user_rows] @ self.video_vectors.T)
        weights /= weights.sum(axis=1, keepdims=True)
        items = len(self.items)
        positives = np.stack([rng.choice(items, POSITIVES, replace=False, p=w) for w in weights])
        history = np.stack([rng.choice(items, SEQUENCE_LENGTH, p=w) for w in weights])
        lengths = rng.integers(5, SEQUENCE_LENGTH + 1, count)
        seq_mask = np.arange(SEQUENCE_LENGTH)[None, :] < lengths[:, None]
        seq = np.where(seq_mask[..., None], self.items[history][..., :5], 0)
        context = np.stack(
            [rng.integers(0, 7, count), rng.integers(0, 24, count), rng.integers(0, 60, count)], 1
        )
        return {
            "context": (context + 1).astype(np.int32),
            "user": self.users[user_rows],
            "seq": seq.astype(np.int32),
            "seq_mask": seq_mask,
            "positives": self.items[positives],
        }
