"""--jit-compile and --profile-steps: XLA trains and evaluates alike; a profile sums by stage."""

from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.models import sparse_gradients
from dftopk_cascade.models.sparse_gradients import dense_gradient_limit, densify_small_gradients
from dftopk_cascade.models.tf_keras import keras
from dftopk_cascade.models.training import xla as xla_module
from dftopk_cascade.models.training.train import TrainOptions, parse_args, run_training
from dftopk_cascade.models.training.xla import (
    compile_optimizer_updates,
    use_xla,
    xla_optimizer_updates,
)

from benchmarks import step_profile


def graph_options(data: str, model_dir: str, **settings) -> TrainOptions:
    """Two graph-mode steps of 60 requests, validation on 60 requests x 48 candidates."""
    values = {
        "batch_size": 60,
        "eval_batch_size": 60,
        "eval_negatives": 8,
        "embedding_dim": 4,
        "strategy": "cpu",
        "steps_per_epoch": 2,
        "validate": True,
        "evaluate": False,
        "verbose": 0,
    }
    return TrainOptions(data, model_dir, **(values | settings))


def test_xla_steps_train_and_evaluate_like_graph_steps(tiny_data, tmp_path) -> None:
    # XLA generates code for the host's instruction set, so a tie can break differently than in
    # the graph: the discrete metrics (recalls) are only checked to be there and in range, the
    # losses must agree within float tolerance. (Not the weights: Adam's first steps move a weight
    # by about the learning rate whatever its gradient's size, so a near-zero gradient's last-bit
    # noise can flip a step's sign.) BCE: the step's towers, embedding gradient, objective and
    # metrics under XLA, at a third of DFTopK's compile time; DFTopK's value and gradient inside
    # an XLA-compiled function are checked in tests/dftopk_tf/test_ops.py.
    histories = {
        choice: run_training(
            graph_options(tiny_data, str(tmp_path / choice), method="bce", jit_compile=choice)
        ).history
        for choice in ("off", "on")
    }
    assert set(histories["on"]) == set(histories["off"])
    for name, values in histories["off"].items():
        if name.endswith("loss"):
            np.testing.assert_allclose(
                histories["on"][name], values, rtol=2e-3, atol=1e-4, err_msg=name
            )
        else:
            assert all(0.0 <= value <= 1.0 for value in histories["on"][name]), name


def test_auto_leaves_cpu_steps_to_the_graph_executor() -> None:
    assert use_xla("auto", tf.distribute.get_strategy()) is bool(
        tf.config.list_logical_devices("GPU")
    )
    assert use_xla("on", tf.distribute.get_strategy()) is True


def test_profiled_steps_sum_by_stage(tiny_data, tmp_path) -> None:
    options = graph_options(
        tiny_data, str(tmp_path / "model"), validate=False, profile_steps=(2, 2)
    )
    run_training(options)
    trace = step_profile.latest_trace(str(tmp_path / "model" / "logs" / "profile"))
    rows = step_profile.stage_rows(step_profile.op_milliseconds(trace), steps=1)
    stages = {(stage, direction) for stage, direction, _, _ in rows}
    for stage in ("retrieval", "prerank", "rank", "objective"):
        assert {(stage, "forward"), (stage, "backward")} <= stages, stage
    assert ("optimizer", "update") in stages
    assert sum(share for *_, share in rows) == pytest.approx(1.0)


def test_step_flags_parse_and_refuse_bad_values(capsys) -> None:
    options = parse_args(
        ["--data", "d", "--model-dir", "m", "--jit-compile", "off", "--profile-steps", "3,5"]
    )
    assert (options.jit_compile, options.profile_steps) == ("off", (3, 5))
    for flag, value in (("--jit-compile", "fast"), ("--profile-steps", "5,2")):
        with pytest.raises(SystemExit):
            parse_args(["--data", "d", "--model-dir", "m", flag, value])
        assert flag in capsys.readouterr().err


def test_xla_optimizer_updates_are_adams_update_compiled_once() -> None:
    # A dense variable and a table whose sparse gradients repeat rows, a different number of
    # distinct rows at each of four steps, given to the optimizer as the cascade's step gives
    # them: XLA's update (on the table's gradient made dense) must move the variables and both
    # moments as tf-keras's executor update of the sparse gradient does, and compile once per
    # variable, not once per step.
    rng = np.random.default_rng(0)
    start = {"dense": rng.normal(size=(6, 3)), "table": rng.normal(size=(50, 4))}
    steps = [
        (
            tf.constant(rng.normal(size=(6, 3)), tf.float32),
            tf.IndexedSlices(
                tf.constant(rng.normal(size=(40, 4)), tf.float32),
                tf.constant(rng.integers(0, distinct, 40)),
                tf.constant([50, 4]),
            ),
        )
        for distinct in (5, 12, 20, 33)
    ]

    def train(xla: bool) -> tuple[list[np.ndarray], keras.optimizers.Optimizer]:
        variables = [tf.Variable(start[name], dtype=tf.float32) for name in ("dense", "table")]
        adam = keras.optimizers.Adam(1e-2)
        if xla:
            compile_optimizer_updates(adam, tf.distribute.get_strategy(), variables)
        assert adam.jit_compile is xla
        for gradients in steps:
            gradients = densify_small_gradients(gradients, variables, dense_gradient_limit(adam))
            assert isinstance(gradients[1], tf.IndexedSlices) is not xla
            adam.apply_gradients(zip(gradients, variables, strict=True))
        return [v.numpy() for v in variables + list(adam.variables[1:])], adam

    # The table stands for one too large for a dense gradient without XLA.
    with mock.patch.object(sparse_gradients, "DENSE_GRADIENT_MAX_ELEMENTS", 100):
        graph, _ = train(xla=False)
        compiled, adam = train(xla=True)
    assert len(compiled) == 6  # two variables, their first and second moments
    for got, want in zip(compiled, graph, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert adam._update_step_xla.experimental_get_tracing_count() == 2


def test_no_xla_updates_over_several_cpus_or_for_a_table_too_large_to_densify() -> None:
    small, large = tf.Variable(tf.zeros([2, 2])), tf.Variable(tf.zeros([4, 2]))
    assert xla_optimizer_updates(tf.distribute.get_strategy(), [small, large]) is True
    with mock.patch.object(xla_module, "XLA_DENSE_GRADIENT_MAX_ELEMENTS", 7):
        assert xla_optimizer_updates(tf.distribute.get_strategy(), [small]) is True
        assert xla_optimizer_updates(tf.distribute.get_strategy(), [small, large]) is False
    with mock.patch.object(
        xla_module, "strategy_devices", return_value=["/device:CPU:0", "/device:CPU:1"]
    ):
        assert xla_optimizer_updates(tf.distribute.get_strategy(), [small]) is False
