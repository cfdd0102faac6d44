"""Where a training step's time goes, by stage, from a profiler trace (``--profile-steps``).

Reads the newest ``*.xplane.pb`` under a profile folder (``python -m
dftopk_cascade.models.training.train --profile-steps FIRST,LAST`` writes ``MODEL_DIR/logs/profile``)
and sums the run time of TensorFlow's ops on the host by stage: the op's name scope (``retrieval``,
``prerank``, ``rank``, ``objective`` for the method's loss, ``embedding_gradients``, the optimizer
``Adam``), forward or backward (ops under ``gradient_tape/``). Times are CPU time of the ops, summed
over the threads that ran them, per profiled step; the share is of all op time.

Usage:
    python -m dftopk_cascade.models.training.train --data DATA --model-dir /tmp/profiled
    --profile-steps 4,6 \\
        --steps-per-epoch 6 --no-evaluation --overwrite
    python -m benchmarks.step_profile /tmp/profiled/logs/profile --steps 3

Example:
    >>> stage_of("gradient_tape/rank/cross_0/dense/MatMul:_MklMatMul")
    ('rank', 'backward')
    >>> stage_of("Adam/UnsortedSegmentSum:UnsortedSegmentSum")
    ('optimizer', 'update')
"""

import argparse
import collections
import glob
import os
import re
from collections.abc import Sequence

from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.models.tables import markdown_table
from tensorflow.tsl.profiler.protobuf import xplane_pb2

#: Name scopes of the stages, as the cascade's train step opens them.
STAGE_SCOPES: tuple[str, ...] = (
    "retrieval",
    "prerank",
    "rank",
    "objective",
    "embedding_gradients",
)
OPTIMIZER_SCOPES: tuple[str, ...] = ("Adam", "SGD", "optimizer")
HOST_PLANE = "/host:CPU"
#: A TensorFlow op's event: ``scope/name:OpType``.
OP_EVENT = re.compile(r"[^:\s]+:[A-Za-z_]\w*")


def stage_of(op_name: str) -> tuple[str, str]:
    """(stage, direction) of a profiled op named ``scope/.../name:OpType``.

    Example:
        >>> stage_of("prerank/mlp/dense_0/MatMul:_MklMatMul")
        ('prerank', 'forward')
    """
    scopes = op_name.rsplit(":", 1)[0].split("/")
    direction = "backward" if "gradient_tape" in scopes else "forward"
    for scope in scopes:
        if scope in STAGE_SCOPES:
            return scope, direction
        if scope in OPTIMIZER_SCOPES:
            return "optimizer", "update"
    return "other", direction


def latest_trace(profile_dir: str) -> str:
    """The newest ``*.xplane.pb`` under ``profile_dir``; ``FileNotFoundError`` if none.

    Example:
        >>> latest_trace(tmp_dir)
        Traceback (most recent call last):
        ...
        FileNotFoundError: ...: no profiler trace (*.xplane.pb); run
        dftopk_cascade.models.training.train with ...
    """
    traces = glob.glob(os.path.join(profile_dir, "**", "*.xplane.pb"), recursive=True)
    if not traces:
        raise FileNotFoundError(
            f"{profile_dir}: no profiler trace (*.xplane.pb); "
            "run dftopk_cascade.models.training.train with --profile-steps"
        )
    return max(traces, key=os.path.getmtime)


def op_milliseconds(trace_path: str) -> dict[str, float]:
    """Total run time in ms of each TensorFlow op on the host, by op name, in one trace.

    Example:
        >>> import tensorflow as tf
        >>> @tf.function
        ... def step(x):
        ...     with tf.name_scope("rank"):
        ...         return tf.matmul(x, x)
        >>> tf.profiler.experimental.start(tmp_dir + "/trace")
        >>> _ = step(tf.ones([64, 64])).numpy()
        >>> tf.profiler.experimental.stop()
        >>> times = op_milliseconds(latest_trace(tmp_dir + "/trace"))
        >>> [stage_of(name) for name in times if "MatMul" in name]
        [('rank', 'forward')]
    """
    space = xplane_pb2.XSpace()
    with open(trace_path, "rb") as file:
        space.ParseFromString(file.read())
    totals: dict[str, float] = collections.Counter()
    for plane in space.planes:
        if plane.name != HOST_PLANE:
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if OP_EVENT.fullmatch(name):  # the other events are executor spans
                    totals[name] += event.duration_ps / 1e9
    return dict(totals)


def stage_rows(op_ms: dict[str, float], steps: int) -> list[tuple[str, str, float, float]]:
    """(stage, direction, ms per step, share of all op time) rows, largest first.

    Example:
        >>> stage_rows({"rank/MatMul:_MklMatMul": 30.0, "Adam/Mul:Mul": 10.0}, steps=2)
        [('rank', 'forward', 15.0, 0.75), ('optimizer', 'update', 5.0, 0.25)]
    """
    sums: dict[tuple[str, str], float] = collections.Counter()
    for name, ms in op_ms.items():
        sums[stage_of(name)] += ms
    total = sum(sums.values()) or 1.0
    rows = [(stage, direction, ms / steps, ms / total) for (stage, direction), ms in sums.items()]
    return sorted(rows, key=lambda row: -row[2])


def op_type_rows(op_ms: dict[str, float], steps: int, top: int = 10) -> list[tuple[str, float]]:
    """The ``top`` op types by ms per step.

    Example:
        >>> op_type_rows({"a/MatMul:_MklMatMul": 4.0, "b:Mul": 2.0, "c:Mul": 2.0}, steps=2)
        [('_MklMatMul', 2.0), ('Mul', 2.0)]
    """
    sums: dict[str, float] = collections.Counter()
    for name, ms in op_ms.items():
        sums[name.rsplit(":", 1)[1]] += ms / steps
    return sorted(sums.items(), key=lambda item: -item[1])[:top]


def markdown_report(op_ms: dict[str, float], steps: int) -> str:
    """The stage table and the top op types as markdown.

    Example:
        >>> print(markdown_report({"rank/MatMul:_MklMatMul": 4.0}, steps=1).splitlines()[2])
        | rank | forward | 4.0 | 100% |
    """
    stages = markdown_table(
        ["stage", "direction", "op ms / step", "share"],
        [
            [stage, direction, f"{ms:.1f}", f"{share:.0%}"]
            for stage, direction, ms, share in stage_rows(op_ms, steps)
        ],
    )
    op_types = markdown_table(
        ["op type", "op ms / step"],
        [[name, f"{ms:.1f}"] for name, ms in op_type_rows(op_ms, steps)],
    )
    return f"{stages}\n\n{op_types}"


def main(argv: Sequence[str] | None = None) -> str:
    """Command-line entry: ``python -m benchmarks.step_profile --help``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.step_profile",
        description="Sum a training profile (dftopk_cascade.models.training.train --profile-steps) "
        "by cascade "
        "stage: op time per step of retrieval, pre-ranking, ranking, the loss, the embedding "
        "gradients and the optimizer, forward and backward.",
    )
    parser.add_argument("profile_dir", help="the profile folder, e.g. MODEL_DIR/logs/profile")
    parser.add_argument(
        "--steps", type=int, default=1, help="profiled steps in the trace (divides the sums)"
    )
    args = add_entry_flags(parser).parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    trace = latest_trace(args.profile_dir)
    report = markdown_report(op_milliseconds(trace), args.steps)
    print(f"{trace}, {args.steps} step(s)")
    print(report)
    return report


if __name__ == "__main__":
    run_command(main, "python -m benchmarks.step_profile")
