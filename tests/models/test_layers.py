"""Building blocks: id embeddings, masked pooling, target attention, MLP towers."""

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.models.attention import (
    DIN_ATTENTION_UNITS,
    DINAttention,
    TargetAttention,
    make_target_attention,
    masked_softmax_pooling,
)
from dftopk_cascade.models.embeddings import (
    TABLE_LAYOUTS,
    FeatureEmbeddings,
    concat_fields,
    out_of_vocabulary_to_bucket,
)
from dftopk_cascade.models.towers import MLP, masked_mean

from tests.models.batches import COLUMNS, VOCAB_SIZES


def test_out_of_vocabulary_ids_map_to_the_last_row() -> None:
    ids = np.array([-3, 0, 1, 9, 10, 11, 500])
    expected = np.where((ids >= 0) & (ids < 10), ids, 9)
    np.testing.assert_array_equal(out_of_vocabulary_to_bucket(tf.constant(ids), 10), expected)


@pytest.mark.parametrize("layout", TABLE_LAYOUTS)
def test_embeddings_share_tables_by_field_and_bucket_unknown_ids(layout: str) -> None:
    layer = FeatureEmbeddings(VOCAB_SIZES, COLUMNS, embedding_dim=3, layout=layout)
    seq_ids = tf.constant([[[7, 2, 3, 4, 5]]])
    item_ids = tf.constant([[[7, 2, 3, 4, 5, 1, 1, 1], [10_000, 2, 3, 4, 5, 1, 1, 1]]])
    seq = layer(seq_ids, group="seq")
    items = layer(item_ids, group="items")
    assert seq.shape == (1, 1, 5, 3) and items.shape == (1, 2, 8, 3)
    np.testing.assert_array_equal(seq[0, 0], items[0, 0, :5])
    video_table = layer.field_table("video_id").numpy()
    np.testing.assert_array_equal(items[0, 1, 0], video_table[VOCAB_SIZES["video_id"] - 1])
    np.testing.assert_array_equal(items[0, 0, 0], video_table[7])


def test_embeddings_reject_bad_inputs() -> None:
    with pytest.raises(ValueError, match="no vocab size for the user fields"):
        FeatureEmbeddings({"age": 5}, {"user": ["age", "gender"]})
    with pytest.raises(ValueError, match="vocab sizes must be >= 2"):
        FeatureEmbeddings({"age": 1}, {"user": ["age"]})
    layer = FeatureEmbeddings(VOCAB_SIZES, COLUMNS)
    with pytest.raises(ValueError, match="user ids have 4 fields on the last axis, expected 5"):
        layer(tf.zeros([2, 4], tf.int32), group="user")
    with pytest.raises(ValueError, match="unknown feature group 'movies'"):
        layer(tf.zeros([2, 4], tf.int32), group="movies")


@pytest.mark.parametrize("layout", TABLE_LAYOUTS)
def test_tables_start_different(layout: str) -> None:
    layer = FeatureEmbeddings(VOCAB_SIZES, COLUMNS, embedding_dim=4, layout=layout)
    layer.build(None)
    first, second = layer.field_table("author_id").numpy(), layer.field_table("upload_type")
    assert first.shape == (12, 4) and not np.allclose(first, second.numpy()[:12])


def test_fused_table_gives_each_field_its_own_rows() -> None:
    layer = FeatureEmbeddings(VOCAB_SIZES, COLUMNS, embedding_dim=2)
    layer.build(None)
    assert len(layer.weights) == 1
    assert layer.table.shape == (sum(VOCAB_SIZES.values()), 2)
    ids = tf.constant([[3, 11, 0, 500, -1]])  # user fields: 500 and -1 are out of vocabulary
    expected = [
        layer.field_table(field)[min(max(i, -1), VOCAB_SIZES[field] - 1)]
        for field, i in zip(COLUMNS["user"], [3, 11, 0, 11, 11], strict=True)
    ]
    np.testing.assert_array_equal(layer(ids, group="user")[0], tf.stack(expected))
    with pytest.raises(ValueError, match="unknown table layout 'sharded'"):
        FeatureEmbeddings(VOCAB_SIZES, COLUMNS, layout="sharded")


def test_concat_fields_keeps_leading_axes() -> None:
    values = tf.reshape(tf.range(24.0), [2, 3, 4])
    np.testing.assert_array_equal(concat_fields(values), tf.reshape(values, [2, 12]))


def test_masked_mean_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 6, 2)).astype(np.float32)
    mask = rng.random((3, 6)) < 0.5
    mask[2] = False
    result = masked_mean(tf.constant(values), tf.constant(mask)).numpy()
    for row in range(3):
        expected = values[row][mask[row]].mean(axis=0) if mask[row].any() else np.zeros(2)
        np.testing.assert_allclose(result[row], expected, rtol=1e-6, atol=1e-6)


def test_target_attention_matches_the_formula_and_ignores_padded_keys() -> None:
    rng = np.random.default_rng(1)
    queries = rng.normal(size=(2, 3, 5)).astype(np.float32)
    keys = rng.normal(size=(2, 4, 6)).astype(np.float32)
    mask = np.array([[True, True, False, True], [False, False, False, False]])
    layer = TargetAttention(units=7)
    output = layer(tf.constant(queries), tf.constant(keys), tf.constant(mask)).numpy()
    w_q = layer.query_projection.kernel.numpy()
    w_k = layer.key_projection.kernel.numpy()
    logits = np.einsum("nu,lu->nl", queries[0] @ w_q, keys[0] @ w_k) / np.sqrt(7)
    logits = np.where(mask[0], logits, -np.inf)
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(output[0], weights @ keys[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(output[1], np.zeros((3, 6)))
    changed = keys.copy()
    changed[0, 2] = 100.0
    again = layer(tf.constant(queries), tf.constant(changed), tf.constant(mask)).numpy()
    np.testing.assert_allclose(again, output, rtol=1e-6)


def din_attention_reference(layer, queries, keys, mask):
    """DIN's attention in NumPy: softmax over the real j of v . relu(W [k_j; q_i] + b)."""
    kernel = np.concatenate(
        [layer.key_projection.kernel.numpy(), layer.query_projection.kernel.numpy()]
    )
    bias = layer.query_projection.bias.numpy()
    output_weights = layer.output_projection.kernel.numpy()[:, 0]
    output = np.zeros(queries.shape[:2] + keys.shape[-1:])
    for row in range(queries.shape[0]):
        real_keys = keys[row][mask[row]]
        for item, query in enumerate(queries[row]):
            if len(real_keys) == 0:
                continue
            pairs = np.concatenate([real_keys, np.tile(query, (len(real_keys), 1))], axis=1)
            logits = np.maximum(pairs @ kernel + bias, 0.0) @ output_weights
            weights = np.exp(logits - logits.max())
            output[row, item] = (weights / weights.sum()) @ real_keys
    return output


def din_attention_inputs(seed: int = 3):
    rng = np.random.default_rng(seed)
    queries = rng.normal(size=(3, 4, 5)).astype(np.float32)
    keys = rng.normal(size=(3, 6, 7)).astype(np.float32)
    mask = np.array(
        [
            [True, True, False, True, False, False],
            [False, False, False, False, False, False],
            [True, True, True, True, True, True],
        ]
    )
    return queries, keys, mask


def test_din_attention_matches_the_formula_and_ignores_padded_keys() -> None:
    queries, keys, mask = din_attention_inputs()
    layer = DINAttention(units=9)
    layer(tf.constant(queries), tf.constant(keys), tf.constant(mask))
    # Non-zero biases, so the test also covers where the hidden layer's bias enters.
    layer.query_projection.bias.assign(np.linspace(-0.5, 0.5, 9))
    output = layer(tf.constant(queries), tf.constant(keys), tf.constant(mask)).numpy()
    expected = din_attention_reference(layer, queries, keys, mask)
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(output[1], np.zeros((4, 7)))
    changed = np.where(mask[..., None], keys, 100.0).astype(np.float32)
    again = layer(tf.constant(queries), tf.constant(changed), tf.constant(mask)).numpy()
    np.testing.assert_allclose(again, output, rtol=1e-6)


def din_attention_plain(layer, queries, keys, mask):
    """The same formula in plain TF ops, request by request over the real keys only."""
    kernel = tf.concat([layer.key_projection.kernel, layer.query_projection.kernel], axis=0)
    rows = []
    for row in range(queries.shape[0]):
        real_keys = tf.boolean_mask(keys[row], mask[row])
        if real_keys.shape[0] == 0:
            rows.append(tf.zeros([queries.shape[1], keys.shape[-1]]))
            continue
        count = real_keys.shape[0]
        pairs = tf.concat(
            [
                tf.tile(real_keys[None], [queries.shape[1], 1, 1]),
                tf.tile(queries[row][:, None], [1, count, 1]),
            ],
            axis=-1,
        )
        hidden = tf.nn.relu(pairs @ kernel + layer.query_projection.bias)
        logits = (hidden @ layer.output_projection.kernel)[..., 0]
        rows.append(tf.nn.softmax(logits, axis=-1) @ real_keys)
    return tf.stack(rows)


def test_din_attention_gradients_match_autodiff_of_the_plain_formula() -> None:
    queries, keys, mask = (tf.constant(value) for value in din_attention_inputs(seed=4))
    layer = DINAttention(units=6)
    layer(queries, keys, mask)
    upstream = tf.random.stateless_normal([3, 4, 7], seed=[5, 6])

    def gradients(function):
        with tf.GradientTape() as tape:
            tape.watch([queries, keys])
            loss = tf.reduce_sum(function(layer, queries, keys, mask) * upstream)
        return tape.gradient(loss, [queries, keys, *layer.trainable_variables])

    def layer_call(layer, queries, keys, mask):
        return layer(queries, keys, mask)

    found, expected = gradients(layer_call), gradients(din_attention_plain)
    assert len(found) == 6  # queries, keys; the key and query kernels, the bias, the output
    for value, reference in zip(found, expected, strict=True):
        assert float(tf.reduce_max(tf.abs(reference))) > 0.0
        np.testing.assert_allclose(value, reference, rtol=1e-4, atol=1e-5)
    padded_keys = found[1].numpy()[~mask.numpy()]
    np.testing.assert_array_equal(padded_keys, np.zeros_like(padded_keys))


def test_target_attentions_are_chosen_by_name() -> None:
    assert isinstance(make_target_attention("bilinear", 8), TargetAttention)
    din = make_target_attention("din", 8, name="target_attention")
    assert isinstance(din, DINAttention) and din.name == "target_attention"
    assert din.units == DIN_ATTENTION_UNITS == 80  # the official model's attention MLP
    with pytest.raises(ValueError, match="unknown target attention 'mlp'; choose one of bilinear"):
        make_target_attention("mlp")
    with pytest.raises(ValueError, match="units must be >= 1"):
        DINAttention(units=0)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float32])
def test_masked_softmax_pooling_gives_zeros_without_keys_in_every_float_type(dtype) -> None:
    """A request without behaviours must not turn NaN, even where -1e9 overflows (float16)."""
    logits = tf.constant([[[1.0, 2.0]], [[1.0, 2.0]]], dtype)
    keys = tf.constant([[[1.0], [3.0]], [[1.0], [3.0]]], dtype)
    mask = tf.constant([[False, False], [True, True]])
    pooled = tf.cast(masked_softmax_pooling(logits, keys, mask), tf.float32).numpy()
    expected = (np.exp(1.0) * 1.0 + np.exp(2.0) * 3.0) / (np.exp(1.0) + np.exp(2.0))
    np.testing.assert_array_equal(pooled[0], [[0.0]])
    np.testing.assert_allclose(pooled[1], [[expected]], rtol=2e-2)


def test_mlp_last_layer_is_linear_and_sizes_are_checked() -> None:
    mlp = MLP((4, 3))
    outputs = mlp(tf.random.stateless_normal([50, 6], seed=[1, 2])).numpy()
    assert outputs.shape == (50, 3) and (outputs < 0).any()
    with pytest.raises(ValueError, match="non-empty list of sizes >= 1"):
        MLP(())


@pytest.mark.parametrize(
    "layer",
    [
        FeatureEmbeddings(VOCAB_SIZES, COLUMNS, embedding_dim=3),
        TargetAttention(units=5),
        DINAttention(units=5),
        MLP((8, 2), activation="tanh"),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_layer_config_round_trip(layer) -> None:
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config


@pytest.mark.parametrize("layout", TABLE_LAYOUTS)
def test_normal_embedding_init_starts_at_the_official_scale(layout: str) -> None:
    """``normal`` is torch's nn.Embedding start N(0, 1); ``uniform`` Keras's U(-0.05, 0.05)."""
    normal = FeatureEmbeddings(VOCAB_SIZES, COLUMNS, embedding_dim=64, layout=layout, init="normal")
    uniform = FeatureEmbeddings(VOCAB_SIZES, COLUMNS, embedding_dim=64, layout=layout)
    normal.build(None)
    uniform.build(None)
    normal_values = np.concatenate([normal.field_table(f).numpy().ravel() for f in normal.fields])
    uniform_values = np.concatenate(
        [uniform.field_table(f).numpy().ravel() for f in uniform.fields]
    )
    assert abs(normal_values.std() - 1.0) < 0.1 and abs(normal_values.mean()) < 0.1
    assert np.abs(uniform_values).max() <= 0.05
    assert FeatureEmbeddings.from_config(normal.get_config()).init == "normal"
    with pytest.raises(ValueError, match="unknown embedding init 'xavier'"):
        FeatureEmbeddings(VOCAB_SIZES, COLUMNS, init="xavier")
