"""What stock TF Serving cannot run in a SavedModel, found by walking its graphs.

A stock ``tensorflow_model_server`` on CPU runs a node when TensorFlow has a CPU kernel for the
node's op and dtypes, inside one process. ``serving_problems`` walks every node of every meta
graph and of every function in the function library and names each node that fails that:

- an op with no CPU kernel registered for its dtypes
  (``tensorflow.python.framework.kernels.get_registered_kernels_for_op``), which covers ops of a
  custom op library that is not loaded ("Op type not registered" in the server) and GPU/TPU-only
  kernels;
- by name, ops that have CPU kernels here but no meaning in a model server: Python callbacks
  (``PyFunc``, ``PyFuncStateless``, ``EagerPyFunc`` from ``tf.numpy_function``/``tf.py_function``:
  the server has no Python interpreter), collectives, NCCL and DTensor ops (several workers or
  devices), remote calls, and TPU-, GPU- or XLA-specific ops;
- functions or nodes marked for XLA compilation (``jit_compile=True``), which need XLA at run
  time.

Ops of a custom library imported into the exporting process (ScaNN, TFRA, ...) register CPU
kernels here and pass; stock TF Serving links only TensorFlow's own ops plus TF Text and
TF Decision Forests (docs/serving.md).

Example:
    >>> from dftopk_cascade.serving.export.toy_servables import save_toy_servable, toy_scorer
    >>> folder = save_toy_servable(toy_scorer(default_k=10))
    >>> serving_problems(folder)
    []
"""

import tensorflow as tf
from dftopk_cascade.serving.saved_model_proto import read_saved_model
from tensorflow.core.framework import attr_value_pb2, graph_pb2, kernel_def_pb2, node_def_pb2
from tensorflow.python.framework import kernels, op_def_registry

#: Function attributes that make TensorFlow compile a function with XLA.
XLA_ATTRIBUTES = ("_XlaMustCompile", "_XlaCompile", "_XlaScope")
#: Ops that call back into the Python interpreter of the process that built the graph.
PYTHON_CALLBACK_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
#: Ops that reach another process or device.
REMOTE_OPS = frozenset({"RemoteCall", "Send", "Recv", "_Send", "_Recv", "_HostSend", "_HostRecv"})
#: Op-name prefixes and parts of ops that need several devices or one kind of accelerator.
DEVICE_SPECIFIC_PREFIXES = {
    "Collective": "a collective op (needs several workers or devices)",
    "Nccl": "an NCCL op (needs several GPUs)",
    "_Nccl": "an NCCL op (needs several GPUs)",
    "DTensor": "a DTensor op (needs a device mesh)",
}
DEVICE_SPECIFIC_PARTS = {
    "TPU": "a TPU op",
    "Tpu": "a TPU op",
    "Xla": "an XLA op",
    "Gpu": "a GPU op",
}
#: Kernel device types that run on a CPU-only server (DEFAULT kernels run on any device).
CPU_DEVICE_TYPES = ("CPU", "DEFAULT")


def refused_by_name(op: str) -> str | None:
    """Why ``op`` cannot run in a model server whatever its kernels, or None.

    Example:
        >>> refused_by_name("EagerPyFunc")
        'a Python callback (the model server has no Python interpreter)'
        >>> refused_by_name("MatMul") is None
        True
    """
    if op in PYTHON_CALLBACK_OPS:
        return "a Python callback (the model server has no Python interpreter)"
    if op in REMOTE_OPS:
        return "a remote or cross-device op"
    for prefix, reason in DEVICE_SPECIFIC_PREFIXES.items():
        if op.startswith(prefix):
            return reason
    for part, reason in DEVICE_SPECIFIC_PARTS.items():
        if part in op:
            return reason
    return None


def _attribute(node: node_def_pb2.NodeDef, name: str) -> attr_value_pb2.AttrValue | None:
    """The node's attribute, or its op's default (SavedModels leave default values out)."""
    if name in node.attr:
        return node.attr[name]
    op_def = op_def_registry.get(node.op)
    for attr in op_def.attr if op_def else ():
        if attr.name == name and attr.HasField("default_value"):
            return attr.default_value
    return None


def _kernel_fits(kernel: kernel_def_pb2.KernelDef, node: node_def_pb2.NodeDef) -> bool:
    for constraint in kernel.constraint:
        value = _attribute(node, constraint.name)
        if value is None or value.placeholder:
            continue
        allowed = set(constraint.allowed_values.list.type)
        types = list(value.list.type) if value.HasField("list") else [value.type]
        if not set(types) <= allowed:
            return False
    return True


def has_cpu_kernel(node: node_def_pb2.NodeDef) -> bool:
    """Whether TensorFlow has a CPU kernel for the node's op and dtypes.

    Example:
        >>> def matmul(dtype):
        ...     attr = {"T": attr_value_pb2.AttrValue(type=dtype.as_datatype_enum)}
        ...     return node_def_pb2.NodeDef(name="m", op="MatMul", attr=attr)
        >>> has_cpu_kernel(matmul(tf.float32)), has_cpu_kernel(matmul(tf.string))
        (True, False)
    """
    registered = kernels.get_registered_kernels_for_op(node.op).kernel
    return any(
        kernel.device_type in CPU_DEVICE_TYPES and _kernel_fits(kernel, node)
        for kernel in registered
    )


def _dtype_summary(node: node_def_pb2.NodeDef) -> str:
    types = {
        name: value.type for name, value in node.attr.items() if value.WhichOneof("value") == "type"
    }
    if not types:
        return ""
    return " for " + ", ".join(
        f"{name}={tf.as_dtype(value).name}" for name, value in sorted(types.items())
    )


def _forces_xla(attributes) -> bool:
    for name in XLA_ATTRIBUTES:
        value: attr_value_pb2.AttrValue | None = attributes.get(name)
        if value is not None and (value.b or value.s):
            return True
    return False


def node_problem(node: node_def_pb2.NodeDef) -> str | None:
    """Why a model server could not run ``node``, or None.

    Example:
        >>> node_problem(node_def_pb2.NodeDef(name="callback", op="PyFunc"))
        "uses op 'PyFunc', a Python callback (the model server has no Python interpreter)"
    """
    reason = refused_by_name(node.op)
    if reason:
        return f"uses op {node.op!r}, {reason}"
    if op_def_registry.get(node.op) is None:
        return f"uses op {node.op!r}, not registered in TensorFlow (a custom op library?)"
    if not has_cpu_kernel(node):
        return f"uses op {node.op!r}, which has no CPU kernel{_dtype_summary(node)}"
    return None


def graph_problems(graph: graph_pb2.GraphDef, where: str = "graph") -> list[str]:
    """Problems of one GraphDef: its nodes' and its library functions' nodes', and XLA marks.

    Function calls (a node whose op names a library function) are allowed; the function's own
    nodes are checked.

    Example:
        >>> graph_problems(tf.function(lambda: tf.constant(1)).get_concrete_function()
        ...                .graph.as_graph_def())
        []
    """
    functions = {function.signature.name: function for function in graph.library.function}
    problems = []

    def check_nodes(nodes, owner: str) -> None:
        for node in nodes:
            if node.op in functions:
                continue
            problem = node_problem(node)
            if problem:
                problems.append(f"{owner}: node {node.name!r} {problem}")
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
        >>> from dftopk_cascade.serving.export.toy_servables import save_toy_servable, toy_retrieval
        >>> folder = save_toy_servable(toy_retrieval(default_top_n=200))
        >>> serving_problems(folder)
        []
    """
    problems = []
    for number, meta_graph in enumerate(read_saved_model(saved_model_dir).meta_graphs):
        tags = ",".join(meta_graph.meta_info_def.tags)
        problems += graph_problems(meta_graph.graph_def, f"meta graph {number} [{tags}]")
    return problems
