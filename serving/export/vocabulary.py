"""Out-of-vocabulary ids inside the exported graph: ids outside their table go to the OOV bucket.

The converted data (docs/CONTRACTS.md) shifts ids by + 1 (0 = padding) and gives each field a
table of ``vocab_sizes[field]`` rows whose last row, ``size - 1``, is the out-of-vocabulary
bucket. A served request may carry ids the model never saw (a new user, a new video) or ids
beyond the table: they are mapped to that bucket, so the embedding lookup never fails.

Example:
    >>> vocabulary = FeatureVocabulary({"user": [10, 10, 4, 9, 40]})
    >>> vocabulary.clip("user", tf.constant([[3, 12, 1, -5, 0]])).numpy().tolist()
    [[3, 9, 1, 8, 0]]
"""

from collections.abc import Mapping, Sequence

import tensorflow as tf


class FeatureVocabulary:
    """The table size of every column of the id features, and the clipping into them.

    Args:
        sizes: feature name (``context``, ``user``, ``seq``, ``items``) -> table size of each
            column (padding 0 and the OOV bucket included), in column order.

    Example:
        >>> FeatureVocabulary({"context": [9, 26, 62]}).sizes["context"]
        (9, 26, 62)
    """

    def __init__(self, sizes: Mapping[str, Sequence[int]]):
        for feature, feature_sizes in sizes.items():
            if any(not isinstance(size, int) or size < 2 for size in feature_sizes):
                raise ValueError(
                    f"vocabulary sizes of {feature!r} must be ints >= 2 (padding + OOV bucket), "
                    f"got {list(feature_sizes)}"
                )
        self.sizes = {feature: tuple(feature_sizes) for feature, feature_sizes in sizes.items()}

    @classmethod
    def from_schema(
        cls, columns: Mapping[str, Sequence[str]], vocab_sizes: Mapping[str, int]
    ) -> "FeatureVocabulary":
        """Builds it from a data schema: ``columns`` (feature -> field names in column order)
        and ``vocab_sizes`` (field -> table size), as in ``schema.json`` and ``CascadeConfig``.

        Example:
            >>> FeatureVocabulary.from_schema({"user": ["user_id", "age"]},
            ...                               {"user_id": 50, "age": 9}).sizes
            {'user': (50, 9)}
        """
        missing = sorted(
            {field for fields in columns.values() for field in fields} - set(vocab_sizes)
        )
        if missing:
            raise ValueError(f"vocab_sizes has no size for the fields {missing}")
        return cls(
            {
                feature: [int(vocab_sizes[field]) for field in fields]
                for feature, fields in columns.items()
            }
        )

    def clip(self, feature: str, ids: tf.Tensor) -> tf.Tensor:
        """Maps ids of ``feature`` [..., columns] outside [0, size) to the OOV bucket size - 1.

        Example:
            >>> FeatureVocabulary({"items": [3] * 8}).clip("items", tf.fill([1, 1, 8], 7))[0, 0, 0]
            <tf.Tensor: shape=(), dtype=int32, numpy=2>
        """
        if feature not in self.sizes:
            raise ValueError(f"no vocabulary for feature {feature!r}; known: {sorted(self.sizes)}")
        columns = ids.shape[-1] if ids.shape.rank else None
        if columns is not None and columns != len(self.sizes[feature]):
            raise ValueError(
                f"{feature} has {len(self.sizes[feature])} columns, got ids of shape {ids.shape}"
            )
        sizes = tf.constant(self.sizes[feature], ids.dtype)
        return tf.where((ids < 0) | (ids >= sizes), sizes - 1, ids)

    def clip_features(self, features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Clips every feature that has a vocabulary; other entries pass through unchanged.

        Example:
            >>> vocabulary = FeatureVocabulary({"user": [4] * 5})
            >>> vocabulary.clip_features({"user": tf.fill([1, 5], 9), "k": 3})["user"].numpy()
            array([[3, 3, 3, 3, 3]], dtype=int32)
        """
        return {
            name: self.clip(name, value) if name in self.sizes else value
            for name, value in features.items()
        }
