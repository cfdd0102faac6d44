"""The stock-TF-Serving check: ops without a CPU kernel for their dtypes, Python callbacks,
collectives and device-specific ops, XLA functions, in the graph and its function library."""

import os

import pytest
import tensorflow as tf
from dftopk_cascade.serving.export.graph_ops import graph_problems, serving_problems
from dftopk_cascade.serving.export.publish import write_version
from dftopk_cascade.serving.export_layout import existing_versions
from tensorflow.core.framework import attr_value_pb2, graph_pb2
from tensorflow.core.protobuf import saved_model_pb2


def _graph_of(function, *specs) -> graph_pb2.GraphDef:
    return tf.function(function).get_concrete_function(*specs).graph.as_graph_def()


def test_plain_tf_functions_pass():
    graph = _graph_of(lambda x: tf.math.top_k(x, k=2).values * 2.0, tf.TensorSpec([3, 5]))
    assert graph_problems(graph) == []


def test_a_custom_op_in_a_library_function_is_found():
    graph = _graph_of(tf.function(lambda x: tf.nn.relu(x)), tf.TensorSpec([3]))
    assert graph.library.function, "the nested tf.function should be in the library"
    graph.library.function[0].node_def.add(name="search", op="ScannSearchBatched")
    problems = graph_problems(graph)
    assert len(problems) == 1 and "'ScannSearchBatched', not registered" in problems[0]


def test_a_custom_op_at_the_top_level_is_found():
    graph = _graph_of(lambda x: x + 1.0, tf.TensorSpec([3]))
    graph.node.add(name="lookup", op="TFRA>CuckooHashTableFind")
    assert any("TFRA>CuckooHashTableFind" in problem for problem in graph_problems(graph))


def test_jit_compiled_functions_are_found():
    compiled = tf.function(lambda x: x * 2.0, jit_compile=True)
    problems = graph_problems(_graph_of(lambda x: compiled(x) + 1.0, tf.TensorSpec([3])))
    assert any("marked for XLA compilation" in problem for problem in problems)


@pytest.mark.parametrize(
    ("op", "reason"),
    [
        ("PyFunc", "a Python callback"),
        ("PyFuncStateless", "a Python callback"),
        ("EagerPyFunc", "a Python callback"),
        ("CollectiveReduceV2", "a collective op"),
        ("NcclAllReduce", "an NCCL op"),
        ("DTensorAllReduce", "a DTensor op"),
        ("RemoteCall", "a remote or cross-device op"),
        ("TPUReplicatedInput", "a TPU op"),
        ("XlaSort", "an XLA op"),
    ],
)
def test_ops_no_model_server_runs_are_refused_by_name(op, reason):
    graph = _graph_of(lambda x: x + 1.0, tf.TensorSpec([3]))
    graph.node.add(name="foreign", op=op)
    (problem,) = graph_problems(graph)
    assert f"node 'foreign' uses op {op!r}, {reason}" in problem


def test_an_op_without_a_cpu_kernel_for_its_dtype_is_refused():
    graph = _graph_of(lambda x: tf.matmul(x, x), tf.TensorSpec([2, 2]))
    assert graph_problems(graph) == []
    (matmul,) = [node for node in graph.node if node.op == "MatMul"]
    matmul.attr["T"].CopyFrom(attr_value_pb2.AttrValue(type=tf.string.as_datatype_enum))
    (problem,) = graph_problems(graph)
    assert "uses op 'MatMul', which has no CPU kernel for T=string" in problem


def test_attributes_left_at_their_default_are_read_from_the_op():
    graph = _graph_of(lambda x: tf.math.top_k(x, k=2).indices, tf.TensorSpec([3, 5]))
    (top_k,) = [node for node in graph.node if node.op == "TopKV2"]
    for name in ("Tk", "index_type"):
        top_k.attr.pop(name, None)
    assert graph_problems(graph) == []


def test_a_model_with_a_numpy_function_is_not_published(tmp_path):
    module = tf.Module()
    module.serve = tf.function(
        lambda x: {"y": tf.numpy_function(lambda a: a * 2.0, [x], tf.float32)},
        input_signature=[tf.TensorSpec([None], tf.float32)],
    )
    with pytest.raises(ValueError, match=r"would not load in stock TF Serving(.|\n)*'PyFunc'"):
        write_version(str(tmp_path), "rank", 1, module, {"serving_default": module.serve})
    assert existing_versions(str(tmp_path), "rank") == []
    assert os.listdir(tmp_path / "rank") == []


def test_saved_models_are_read_from_disk(tmp_path):
    module = tf.Module()
    module.serve = tf.function(lambda x: x * 2.0, input_signature=[tf.TensorSpec([None])])
    tf.saved_model.save(module, str(tmp_path))
    assert serving_problems(str(tmp_path)) == []

    saved_model = saved_model_pb2.SavedModel()
    path = os.path.join(str(tmp_path), "saved_model.pb")
    with open(path, "rb") as file:
        saved_model.ParseFromString(file.read())
    saved_model.meta_graphs[0].graph_def.library.function[0].node_def.add(
        name="custom", op="MyCustomOp"
    )
    with open(path, "wb") as file:
        file.write(saved_model.SerializeToString())
    assert any("MyCustomOp" in problem for problem in serving_problems(str(tmp_path)))


def test_missing_saved_model_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"saved_model\.pb"):
        serving_problems(str(tmp_path))
