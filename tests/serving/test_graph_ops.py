"""The stock-TF-Serving check finds custom ops and XLA functions, in the graph and its library."""

import os

import pytest
import tensorflow as tf
from tensorflow.core.framework import graph_pb2
from tensorflow.core.protobuf import saved_model_pb2

from serving.graph_ops import core_op_names, graph_problems, serving_problems


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
    assert len(problems) == 1 and "ScannSearchBatched" in problems[0]


def test_a_custom_op_at_the_top_level_is_found():
    graph = _graph_of(lambda x: x + 1.0, tf.TensorSpec([3]))
    graph.node.add(name="lookup", op="TFRA>CuckooHashTableFind")
    assert any("TFRA>CuckooHashTableFind" in problem for problem in graph_problems(graph))


def test_jit_compiled_functions_are_found():
    compiled = tf.function(lambda x: x * 2.0, jit_compile=True)
    problems = graph_problems(_graph_of(lambda x: compiled(x) + 1.0, tf.TensorSpec([3])))
    assert any("marked for XLA compilation" in problem for problem in problems)


def test_xla_only_ops_count_as_foreign():
    graph = _graph_of(lambda x: x + 1.0, tf.TensorSpec([3]))
    graph.node.add(name="sort", op="XlaSort")
    assert any("XlaSort" in problem for problem in graph_problems(graph))


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


def test_core_op_names_are_the_raw_ops():
    names = core_op_names()
    assert {"MatMul", "TopKV2", "StatefulPartitionedCall", "ResourceGather"} <= names
    assert "ScannSearchBatched" not in names
