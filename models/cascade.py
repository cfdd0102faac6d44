"""``CascadeModel``: retrieval, pre-ranking and ranking trained together as one TFRS model.

The model holds the three stages (``TwoTowerRetrieval``, ``DINPrerank``, ``DCNRank``) and the
training method's objective (``dftopk_cascade.models.objectives``). ``compute_loss((features,
labels), training)`` scores every candidate with every stage in one forward each, returns the
objective's total and logs its parts (per-stage losses, joint loss, learned LCRON stage weights) as
metrics. In evaluation it also streams the paper's metrics (``dftopk_cascade.models.protocol``):
retrieval Recall@10@30, pre-ranking Recall@10@20, the two-stage joint recall (retrieval keeps 30,
pre-ranking 20 of them), and NDCG@10 of pre-ranking and of ranking, logged under the keys of
``metrics.json``.

Under ``tf.distribute`` each replica computes the loss of its own batch; the gradient is taken
of that loss divided by the number of replicas in sync, so the summed gradient equals the one of
the global batch. In-batch negatives come with the input (drawn within each replica's batch);
``in_step_negatives`` instead draws them inside the training loss from every replica's batch
(``dftopk_cascade.pipelines.negatives.add_in_batch_negatives(cross_replica=True)``). The train step
minimises the objective plus the layers' regularization and ``add_loss`` losses (``model.losses``),
as ``tfrs.Model`` does.

Built under a Keras mixed precision policy (``dftopk_cascade.models.precision``), the stages compute
in float16 or bfloat16 with float32 variables; their scores and embeddings leave the model as
float32, the objective computes in float32, and under float16 the train step scales the loss (the
optimizer is a ``LossScaleOptimizer``), as the Keras mixed precision guide prescribes.

Example:
    >>> from dftopk_cascade.models.config import CascadeConfig
    >>> from dftopk_cascade.models.contract import zero_features
    >>> config = CascadeConfig.for_examples(method="bce", tower_units=(16, 8))
    >>> features = zero_features(batch_size=4)  # 4 requests of 40 candidates
    >>> model = build_cascade(config)
    >>> scores = model(features)
    >>> scores["prerank"].shape.as_list()
    [4, 40]
"""

import glob

import tensorflow as tf
import tensorflow_recommenders as tfrs
from dftopk_cascade.models.config import CascadeConfig
from dftopk_cascade.models.contract import STAGE_CANDIDATES, zero_features
from dftopk_cascade.models.model_folder import ModelDir
from dftopk_cascade.models.objectives import make_objective
from dftopk_cascade.models.prerank import DINPrerank
from dftopk_cascade.models.protocol import STAGES, streaming_metrics, update_streaming_metrics
from dftopk_cascade.models.rank import DCNRank
from dftopk_cascade.models.retrieval import TwoTowerRetrieval
from dftopk_cascade.models.sparse_gradients import dense_gradient_limit, densify_small_gradients
from dftopk_cascade.models.tf_keras import keras, register_serializable
from dftopk_cascade.pipelines.negatives import add_in_batch_negatives


@register_serializable
class CascadeModel(tfrs.Model):
    """Retrieval -> pre-ranking -> ranking, trained with one objective (``config.method``).

    Args:
        config: the architecture and method (``CascadeConfig`` or its ``to_dict()``).
        in_step_negatives: in-batch negatives per request drawn inside the training loss from
            every replica's batch (cross-replica gather); 0 leaves negatives to the input.
        seed: seed of those draws.

    Call: ``model(features)`` with a contract batch's features; returns ``{"retrieval",
    "prerank", "rank"}`` scores, float32 [batch, n] each (padded candidates get scores too; the
    losses and metrics leave them out).

    Example:
        >>> from dftopk_cascade.models.config import CascadeConfig
        >>> from dftopk_cascade.models.contract import zero_features
        >>> config = CascadeConfig.for_examples(method="bce", tower_units=(16, 8))
        >>> features = zero_features(batch_size=4)  # 4 requests of 40 candidates
        >>> labels = {"label": tf.tile(tf.range(40.0, 0.0, -1.0)[None], [4, 1])}
        >>> model = CascadeModel(config)
        >>> model.compile(optimizer=keras.optimizers.Adam(1e-2))
        >>> loss = model.compute_loss((features, labels), training=True)
        >>> [tracker.name for tracker in model.loss_trackers][:3]
        ['loss', 'retrieval_loss', 'prerank_loss']
    """

    def __init__(
        self,
        config: CascadeConfig | dict,
        in_step_negatives: int = 0,
        seed: int = 42,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = CascadeConfig.from_dict(config)
        if in_step_negatives < 0:
            raise ValueError(f"in_step_negatives must be >= 0, got {in_step_negatives}")
        self.cascade_config = config
        self.in_step_negatives = int(in_step_negatives)
        self.seed = int(seed)
        shared = {
            "vocab_sizes": config.vocab_sizes,
            "columns": config.columns,
            "embedding_dim": config.embedding_dim,
            "embedding_layout": config.embedding_layout,
            "embedding_init": config.embedding_init,
        }
        self.retrieval = TwoTowerRetrieval(
            **shared, tower_units=config.tower_units, label_k=config.label_k, name="retrieval"
        )
        self.prerank = DINPrerank(
            **shared,
            units=config.prerank_units,
            attention_units=config.attention_units,
            attention=config.prerank_attention,
            name="prerank",
        )
        # The ranking model shares no variable with the other two stages, and its loss is a
        # separate term: a cascade without it trains retrieval and pre-ranking identically.
        self.rank = (
            DCNRank(
                **shared,
                cross_layers=config.rank_cross_layers,
                units=config.rank_units,
                attention_units=config.attention_units,
                name="rank",
            )
            if config.rank_stage
            else None
        )
        self.objective = make_objective(
            config.method,
            config.retrieval_k,
            config.prerank_k,
            config.rank_k,
            config.label_k,
            config.tau,
            config.rank_stage,
        )
        self.objective.build(None)
        self.loss_trackers = [keras.metrics.Mean(name=name) for name in self.objective.output_names]
        self.evaluation_metrics = streaming_metrics(self.stages)
        # A Keras metric's result() in a replica is already aggregated over all replicas: log
        # one replica's value instead of adding them up (Keras' default outside TPUs).
        self.distribute_reduction_method = "first"

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages the cascade scores with: ``("retrieval", "prerank"[, "rank"])``.

        Example:
            >>> config = CascadeConfig.for_examples(method="bce", rank_stage=False)
            >>> CascadeModel(config).stages
            ('retrieval', 'prerank')
        """
        return STAGES if self.rank is not None else STAGES[:2]

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [*self.loss_trackers, *self.evaluation_metrics]

    def stage_outputs(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Every stage's scores [batch, n] and the two towers' embeddings, in one pass.

        Example:
            >>> from dftopk_cascade.models.config import CascadeConfig
            >>> from dftopk_cascade.models.contract import zero_features
            >>> config = CascadeConfig.for_examples(method="bce", tower_units=(16, 8))
            >>> features = zero_features(batch_size=4)  # 4 requests of 40 candidates
            >>> outputs = build_cascade(config).stage_outputs(features)
            >>> outputs["query_embeddings"].shape.as_list(), outputs["rank"].shape.as_list()
            ([4, 8], [4, 40])
        """
        with tf.name_scope("retrieval"):  # one scope per stage in profiles
            query = self.retrieval.query_embeddings(features)
            items = self.retrieval.item_embeddings(features["items"])
            retrieval = tf.einsum("bd,bnd->bn", query, items)
        outputs = {
            "retrieval": retrieval,
            "prerank": self.prerank(features),
            "query_embeddings": query,
            "item_embeddings": items,
        }
        if self.rank is not None:
            outputs["rank"] = self.rank(features)
        return _as_float32(outputs)

    def call(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        scores = {"retrieval": self.retrieval(features), "prerank": self.prerank(features)}
        if self.rank is not None:
            scores["rank"] = self.rank(features)
        return _as_float32(scores)

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """The objective's total for ``(features, labels)``; updates the loss (and eval) metrics.

        In training it first appends the ``in_step_negatives``.

        Example:
            >>> from dftopk_cascade.models.config import CascadeConfig
            >>> from dftopk_cascade.models.contract import zero_features
            >>> config = CascadeConfig.for_examples(method="bce", tower_units=(16, 8))
            >>> features = zero_features(batch_size=4)  # 4 requests of 40 candidates
            >>> labels = {"label": tf.tile(tf.range(40.0, 0.0, -1.0)[None], [4, 1])}
            >>> bool(tf.math.is_finite(build_cascade(config).compute_loss((features, labels))))
            True
        """
        if training and self.in_step_negatives:
            step_seed = tf.stack([tf.constant(self.seed, tf.int64), self.optimizer.iterations])
            inputs = add_in_batch_negatives(
                *inputs, self.in_step_negatives, seed=step_seed, cross_replica=True
            )
        features, labels = inputs
        outputs = self.stage_outputs(features)
        losses = self.objective(labels["label"], outputs)
        for tracker in self.loss_trackers:
            tracker.update_state(losses[tracker.name])
        if not training:
            self._update_evaluation_metrics(labels["label"], outputs)
        return losses["loss"]

    def _update_evaluation_metrics(self, labels: tf.Tensor, outputs: dict[str, tf.Tensor]) -> None:
        update_streaming_metrics(self.evaluation_metrics, labels, outputs)

    def train_step(self, inputs) -> dict[str, tf.Tensor]:
        # tfrs.Model.train_step, with four changes: apply_gradients sums the replicas'
        # gradients, so each replica contributes its share of the loss; small embedding tables
        # get dense gradients (dftopk_cascade.models.sparse_gradients); and only the loss metrics
        # are logged (the evaluation metrics are streamed by test_step); a float16 model scales its
        # loss.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        scaled = isinstance(self.optimizer, keras.mixed_precision.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            loss = self.compute_loss(inputs, training=True)
            regularization_loss = tf.add_n(self.losses) if self.losses else None
            total_loss = loss if regularization_loss is None else loss + regularization_loss
            replica_loss = total_loss / replicas
            if scaled:  # float16: scale the loss so that small gradients do not underflow
                replica_loss = self.optimizer.get_scaled_loss(replica_loss)
        gradients = tape.gradient(replica_loss, self.trainable_variables)
        if scaled:
            gradients = self.optimizer.get_unscaled_gradients(gradients)
        with tf.name_scope("embedding_gradients"):
            gradients = densify_small_gradients(
                gradients, self.trainable_variables, dense_gradient_limit(self.optimizer)
            )
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        logs = {tracker.name: tracker.result() for tracker in self.loss_trackers}
        if regularization_loss is not None:
            logs["regularization_loss"] = regularization_loss
        return logs

    def test_step(self, inputs) -> dict[str, tf.Tensor]:
        self.compute_loss(inputs, training=False)
        return {metric.name: metric.result() for metric in self.metrics}

    def get_config(self) -> dict:
        return {
            "config": self.cascade_config.to_dict(),
            "in_step_negatives": self.in_step_negatives,
            "seed": self.seed,
        }


def _as_float32(outputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """The outputs in float32 (they are float16 or bfloat16 under a mixed precision policy)."""
    return {name: tf.cast(value, tf.float32) for name, value in outputs.items()}


def build_cascade(config: CascadeConfig, **kwargs) -> CascadeModel:
    """A ``CascadeModel`` with its variables created (called once on a zero batch).

    Example:
        >>> from dftopk_cascade.models.config import CascadeConfig
        >>> from dftopk_cascade.models.contract import zero_features
        >>> config = CascadeConfig.for_examples(method="bce", tower_units=(16, 8))
        >>> model = build_cascade(config)
        >>> len(model.trainable_variables) > 0
        True
    """
    model = CascadeModel(config, **kwargs)
    model(zero_features(1, STAGE_CANDIDATES))
    return model


def load_cascade(model_dir: str) -> CascadeModel:
    """Rebuilds a trained cascade from ``MODEL_DIR/config.json`` and ``MODEL_DIR/weights/``.

    Raises ``FileNotFoundError`` when the folder holds no completed training and ``ValueError``
    naming the weights files when they are damaged (e.g. truncated).

    Example:
        >>> import tempfile
        >>> from dftopk_cascade.models.config import CascadeConfig
        >>> from dftopk_cascade.models.contract import zero_features
        >>> config = CascadeConfig.for_examples(method="bce", tower_units=(16, 8))
        >>> features = zero_features(batch_size=4)  # 4 requests of 40 candidates
        >>> model = build_cascade(config)
        >>> folder = tempfile.mkdtemp()  # a model folder, as models.training.train leaves it
        >>> ModelDir(folder).save_weights(model)
        >>> config.save(ModelDir(folder).config_path)
        >>> loaded = load_cascade(folder)
        >>> bool(tf.reduce_all(loaded(features)["rank"] == model(features)["rank"]))
        True
    """
    layout = ModelDir(model_dir)
    config = CascadeConfig.load(layout.config_path)
    if not layout.has_weights():
        raise FileNotFoundError(
            f"{layout.weights_dir}: no trained weights (training has not completed in {model_dir})"
        )
    model = build_cascade(config)
    try:
        model.load_weights(layout.weights_prefix).expect_partial()
    except (IndexError, ValueError, tf.errors.OpError) as error:  # a truncated or damaged file
        files = ", ".join(sorted(glob.glob(layout.weights_prefix + ".*")))
        raise ValueError(
            f"{files}: the trained weights cannot be read ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}); the file is damaged or "
            "truncated, train again with --overwrite"
        ) from error
    return model
