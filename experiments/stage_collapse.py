"""Each stage's gradient and score spread, step by step: ``python -m experiments.stage_collapse``.

A tower can die in training: one large update pushes every ReLU of a layer below zero, the stage
then gives every candidate the same score, its gradient vanishes, and it never recovers. The
final model shows only the end state (``experiments.score_ties``: one distinct score per request);
this shows when and how it happens. It trains a fresh cascade with Adam (the training default,
1e-2) on the days' requests in file order, without in-batch negatives, and prints, every
``--every`` steps and at every step where something moves (a gradient norm 10x its running
median, or a stage whose candidates stop being told apart), per stage: the gradient norm of its
variables, the mean per-request std of its scores and the mean number of distinct scores among a
request's real candidates.

Example::

    python -m experiments.stage_collapse --data /tmp/comparison/tfrecords --method sparse-topk \\
        --temperature 0.108 --steps 500
"""

import argparse
import statistics
from collections.abc import Sequence

import numpy as np
from dftopk_cascade.command_line.entry import add_entry_flags, run_command

from experiments.score_ties import score_ties

#: A step is printed when a stage's gradient norm exceeds this many times its running median.
SPIKE_FACTOR = 10.0


def stage_rows(model, features: dict, gradients: dict) -> dict[str, dict[str, float]]:
    """Per stage in ``gradients``: its gradient norm and ``experiments.score_ties``'s values.

    Example:
        >>> from dftopk_cascade.models.cascade import build_cascade
        >>> from dftopk_cascade.models.config import CascadeConfig
        >>> from dftopk_cascade.models.contract import zero_features
        >>> model = build_cascade(CascadeConfig.for_examples(method="bce"))
        >>> rows = stage_rows(model, zero_features(batch_size=2), {"prerank": 0.5})
        >>> rows["prerank"]["distinct"], rows["prerank"]["gradient_norm"]
        (1.0, 0.5)
    """
    spread = score_ties(model, features)
    return {
        stage: {"gradient_norm": float(norm), **spread[stage]} for stage, norm in gradients.items()
    }


def watch(
    data_dir: str,
    method: str,
    temperature: float,
    steps: int,
    every: int = 50,
    batch_size: int = 1024,
    seed: int = 0,
    learning_rate: float = 1e-2,
) -> list[tuple[int, float, dict]]:
    """Trains ``steps`` steps and returns the printed rows: (step, loss, ``stage_rows``).

    Example::

        watch("/tmp/tfrec", "sparse-topk", 0.108, steps=300)
    """
    import tensorflow as tf
    from dftopk_cascade.models.cascade import build_cascade
    from dftopk_cascade.models.config import CascadeConfig
    from dftopk_cascade.models.tf_keras import keras
    from dftopk_cascade.models.training.data import evaluation_dataset
    from dftopk_cascade.pipelines.data_schema import read_data_schema

    keras.utils.set_random_seed(seed)
    schema = read_data_schema(data_dir)
    config = CascadeConfig.from_schema(schema, method=method, tau=temperature, rank_stage=False)
    model = build_cascade(config)
    optimizer = keras.optimizers.Adam(learning_rate)
    stages = {stage: getattr(model, stage).trainable_variables for stage in model.stages}
    days = sorted(schema["days"])[:-2]  # the comparison's training days
    batches = evaluation_dataset(data_dir, days, batch_size, 0, seed, schema).repeat()

    @tf.function
    def train_step(features, labels):
        with tf.GradientTape() as tape:
            loss = model.compute_loss((features, labels), training=True)
        variables = model.trainable_variables
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(
            [(g, v) for g, v in zip(gradients, variables, strict=True) if g is not None]
        )
        by_variable = {id(v): g for g, v in zip(gradients, variables, strict=True)}
        norms = {
            stage: tf.linalg.global_norm(
                [by_variable[id(v)] for v in owned if by_variable[id(v)] is not None]
            )
            for stage, owned in stages.items()
        }
        return loss, norms

    rows, history = [], {stage: [] for stage in stages}
    for step, (features, labels) in enumerate(batches.take(steps)):
        loss, norms = train_step(features, labels)
        norms = {stage: float(norm) for stage, norm in norms.items()}
        spike = any(
            len(history[stage]) >= 10
            and norms[stage] > SPIKE_FACTOR * statistics.median(history[stage][-100:])
            for stage in stages
        )
        for stage in stages:
            history[stage].append(norms[stage])
        measured = stage_rows(model, features, norms)
        candidates = float(np.mean(np.sum(np.asarray(features["item_mask"]), axis=1)))
        collapsing = any(row["distinct"] < candidates - 1 for row in measured.values())
        if step % every == 0 or spike or collapsing:
            rows.append((step, float(loss), measured))
            cells = "; ".join(
                f"{stage} grad {row['gradient_norm']:.3g} std {row['std']:.3g} "
                f"distinct {row['distinct']:.1f}"
                for stage, row in measured.items()
            )
            print(f"step {step:5d} loss {float(loss):.4f}{' SPIKE' if spike else ''}: {cells}")
    return rows


def main(argv: Sequence[str] | None = None) -> list[tuple[int, float, dict]]:
    """Command-line entry; returns ``watch``'s rows.

    Example::

        python -m experiments.stage_collapse --data /tmp/tfrec --method sparse-topk \\
            --temperature 0.108
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="converted TFRecord folder")
    parser.add_argument("--method", required=True, help="an operator name (--method of train)")
    parser.add_argument("--temperature", type=float, required=True, help="the method's value")
    parser.add_argument("--steps", type=int, default=500, help="training steps")
    parser.add_argument("--every", type=int, default=50, help="print every this many steps")
    parser.add_argument("--batch-size", type=int, default=1024, help="requests per step")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model's start")
    arguments = add_entry_flags(parser).parse_args(argv)
    print(
        f"{arguments.method} at {arguments.temperature:g}, {arguments.steps} steps of "
        f"{arguments.batch_size} requests, seed {arguments.seed}, 0 training negatives:"
    )
    return watch(
        arguments.data,
        arguments.method,
        arguments.temperature,
        arguments.steps,
        arguments.every,
        arguments.batch_size,
        arguments.seed,
    )


if __name__ == "__main__":
    run_command(main, "python -m experiments.stage_collapse")
