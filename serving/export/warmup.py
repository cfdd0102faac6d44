"""TF Serving warm-up files: ``assets.extra/tf_serving_warmup_requests`` in each exported model.

TF Serving replays the ``PredictionLog`` records of that TFRecord file when it loads a version,
before the version answers requests, so the first real calls do not pay for the first run of the
graph. Each model gets one predict record per cascade shape it serves by default: request
features of one user with an empty history, every input sent (as the ``rest`` and ``grpc``
backends send them: the same feeds make the same session run), retrieval with ``top_n`` =
``retrieval_keep``, pre-ranking with ``retrieval_keep`` candidates and ``k`` = ``prerank_keep``,
ranking with ``prerank_keep`` candidates and ``k`` = ``rank_keep``.

Example:
    >>> from dftopk_cascade.serving.export.toy_servables import toy_cascade_export
    >>> records = read_warmup_requests(f"{toy_cascade_export()}/rank/1")
    >>> [sorted(log.predict_log.request.inputs)[:2] for log in records]
    [['context', 'item_mask']]
"""

import os
import uuid

import numpy as np
import tensorflow as tf
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.cascade_inference import DEFAULT_SIZES, CascadeSizes
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

#: Where TF Serving looks for warm-up requests inside a SavedModel folder.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
#: Most records TF Serving replays ("Number of warmup records exceeds the maximum (1000)").
MAX_WARMUP_RECORDS = 1000


def warmup_inputs(model_name: str, sizes: CascadeSizes = DEFAULT_SIZES) -> dict[str, np.ndarray]:
    """Every input of ``model_name``'s signature for one padding request at the cascade ``sizes``.

    Example:
        >>> warmup_inputs("prerank", CascadeSizes(200, 50, 10))["items"].shape
        (1, 200, 8)
    """
    inputs = {
        name: np.zeros([1, *spec.shape[1:]], spec.dtype.as_numpy_dtype)
        for name, spec in sig.REQUEST_SPECS.items()
    }
    if model_name == sig.RETRIEVAL:
        return inputs | {sig.TOP_N: np.int32(sizes.retrieval_keep)}
    candidates, k = {
        sig.PRERANK: (sizes.retrieval_keep, sizes.prerank_keep),
        sig.RANK: (sizes.prerank_keep, sizes.rank_keep),
    }[model_name]
    return inputs | {
        sig.ITEMS: np.zeros([1, candidates, sig.ITEM_WIDTH], np.int32),
        sig.ITEM_MASK: np.ones([1, candidates], bool),
        sig.K: np.int32(k),
    }


def warmup_log(model_name: str, inputs: dict[str, np.ndarray]) -> prediction_log_pb2.PredictionLog:
    """A ``PredictionLog`` holding a ``serving_default`` predict request with ``inputs``.

    Example:
        >>> warmup_log("rank", {"k": np.int32(3)}).predict_log.request.model_spec.name
        'rank'
    """
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = sig.SIGNATURE_NAME
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )


def write_warmup_requests(
    saved_model_dir: str, model_name: str, sizes: CascadeSizes = DEFAULT_SIZES
) -> str:
    """Writes ``model_name``'s warm-up record into ``saved_model_dir``; returns the file's path.

    The file is written under a temporary name and renamed when complete.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> write_warmup_requests(folder, "retrieval")
        '.../assets.extra/tf_serving_warmup_requests'
    """
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.incomplete-{uuid.uuid4().hex[:8]}"
    try:
        with tf.io.TFRecordWriter(temporary) as writer:
            writer.write(
                warmup_log(model_name, warmup_inputs(model_name, sizes)).SerializeToString()
            )
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def read_warmup_requests(saved_model_dir: str) -> list[prediction_log_pb2.PredictionLog]:
    """The warm-up records of a SavedModel folder ([] when it has no warm-up file).

    Example:
        >>> read_warmup_requests("/nonexistent")
        []
    """
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    if not os.path.isfile(path):
        return []
    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(path)
    ]
