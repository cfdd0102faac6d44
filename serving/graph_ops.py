"""What stock TF Serving cannot run in a SavedModel: ops outside core TensorFlow, forced XLA.

Stock ``tensorflow_model_server`` has the core TensorFlow op registry and nothing else: a graph
that uses an op from a custom op library (ScaNN, TFRA, ...) fails to load with "Op type not
registered", and a function marked ``_XlaMustCompile`` (``jit_compile=True``) needs XLA at run
time. ``serving_problems`` walks every node of every meta graph and of every function in the
function library and names each such problem.

Example:
    >>> serving_problems(f"{export_dir}/rank/1")
    []
"""

import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2, graph_pb2

from serving.saved_model_proto import read_saved_model

#: Function attributes that make TensorFlow compile a function with XLA.
XLA_ATTRIBUTES = ("_XlaMustCompile", "_XlaCompile", "_XlaScope")


def core_op_names() -> frozenset[str]:
    """The ops of core TensorFlow: those with a ``tf.raw_ops`` wrapper (custom libraries have none).

    Example:
        >>> "MatMul" in core_op_names()
        True
    """
    return frozenset(name for name in dir(tf.raw_ops) if not name.startswith("_"))


def _forces_xla(attributes) -> bool:
    for name in XLA_ATTRIBUTES:
        value: attr_value_pb2.AttrValue | None = attributes.get(name)
        if value is not None and (value.b or value.s):
            return True
    return False


def graph_problems(graph: graph_pb2.GraphDef, where: str = "graph") -> list[str]:
    """Problems of one GraphDef: non-core ops and XLA-compiled functions or nodes.

    Function calls (a node whose op names a library function) are allowed; the function's own
    nodes are checked. XLA-only ops (``Xla*``) count as non-core.

    Example:
        >>> graph_problems(tf.function(lambda: tf.constant(1)).get_concrete_function()
        ...                .graph.as_graph_def())
        []
    """
    core = core_op_names()
    functions = {function.signature.name: function for function in graph.library.function}
    problems = []

    def check_nodes(nodes, owner: str) -> None:
        for node in nodes:
            if node.op in functions:
                continue
            if node.op not in core or node.op.startswith("Xla"):
                problems.append(f"{owner}: node {node.name!r} uses op {node.op!r}, not core TF")
            if _forces_xla(node.attr):
                problems.append(f"{owner}: node {node.name!r} is marked for XLA compilation")

    check_nodes(graph.node, where)
    for name, function in functions.items():
        owner = f"{where} function {name!r}"
        if _forces_xla(function.attr):
            problems.append(f"{owner} is marked for XLA compilation (jit_compile=True)")
        check_nodes(function.node_def, owner)
    return problems


def serving_problems(saved_model_dir: str) -> list[str]:
    """Every reason a stock TF Serving could not load or run the SavedModel at ``saved_model_dir``.

    Raises ``FileNotFoundError`` when there is no ``saved_model.pb`` there.

    Example:
        >>> serving_problems(f"{export_dir}/retrieval/1")
        []
    """
    problems = []
    for number, meta_graph in enumerate(read_saved_model(saved_model_dir).meta_graphs):
        tags = ",".join(meta_graph.meta_info_def.tags)
        problems += graph_problems(meta_graph.graph_def, f"meta graph {number} [{tags}]")
    return problems
