"""What a SavedModel's ``saved_model.pb`` says beyond what ``tf.saved_model.load`` exposes.

``signature_defaults`` reads a signature's default input values (``SignatureDef.defaults``). TF
Serving's gRPC Predict feeds them for inputs a request leaves out (its REST API does not); a
signature loaded in Python still needs every input, so in-process callers fill them in from here.

Example:
    >>> from dftopk_cascade.serving.export.toy_servables import save_toy_servable, toy_scorer
    >>> folder = save_toy_servable(toy_scorer(default_k=10))
    >>> signature_defaults(folder)
    {'k': array(10, dtype=int32)}
"""

import os

import numpy as np
import tensorflow as tf
from dftopk_cascade.serving.signatures import SIGNATURE_NAME
from tensorflow.core.protobuf import saved_model_pb2


def read_saved_model(saved_model_dir: str) -> saved_model_pb2.SavedModel:
    """The parsed ``saved_model.pb`` of a SavedModel folder.

    Raises ``FileNotFoundError`` when there is no ``saved_model.pb`` there.

    Example:
        >>> from dftopk_cascade.serving.export.toy_servables import save_toy_servable, toy_scorer
        >>> folder = save_toy_servable(toy_scorer(default_k=10))
        >>> len(read_saved_model(folder).meta_graphs)
        1
    """
    path = os.path.join(saved_model_dir, "saved_model.pb")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no SavedModel at {saved_model_dir} (missing saved_model.pb)")
    saved_model = saved_model_pb2.SavedModel()
    with open(path, "rb") as file:
        saved_model.ParseFromString(file.read())
    return saved_model


def signature_defaults(
    saved_model_dir: str, signature_name: str = SIGNATURE_NAME
) -> dict[str, np.ndarray]:
    """Input name -> default value of a signature (empty when it has none).

    Raises ``KeyError`` naming the signature when the SavedModel lacks it.

    Example:
        >>> from dftopk_cascade.serving.export.toy_servables import save_toy_servable, toy_retrieval
        >>> folder = save_toy_servable(toy_retrieval(default_top_n=200))
        >>> signature_defaults(folder)["top_n"]
        array(200, dtype=int32)
    """
    for meta_graph in read_saved_model(saved_model_dir).meta_graphs:
        if signature_name in meta_graph.signature_def:
            defaults = meta_graph.signature_def[signature_name].defaults
            return {name: tf.make_ndarray(proto) for name, proto in defaults.items()}
    raise KeyError(f"{saved_model_dir} has no signature {signature_name!r}")
