"""TF Serving's REST predict JSON, as strict as ``tensorflow_model_server``.

Written from the REST API's documented rules and the messages of TF Serving's own converter
(``tensorflow_serving/util/json_tensor.cc``), without its code:

- a request has either ``inputs`` (columnar: one value per signature input, every input
  required, extra keys ignored) or ``instances`` (rows: a list of objects with exactly the
  signature's inputs, batched along a new first dimension; a plain list for a one-input
  signature);
- JSON values are not cast: an int32 input takes JSON integers only (``3.0`` is refused), a
  bool input ``true``/``false`` only, a float input any number;
- the answer is ``{"outputs": ...}`` for ``inputs`` and ``{"predictions": [...]}`` (one entry per
  row) for ``instances``; one output is written bare, several as an object by name.

Every refusal is an INVALID_ARGUMENT ``StatusError`` with the server's message.
"""

import base64
import binascii
import json
from collections.abc import Mapping

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import predict_pb2

from tests.serving.stand_in_status import StatusError, absl_status_string, invalid_argument

INPUTS = "inputs"
INSTANCES = "instances"
DEBUG_STRING_BYTES = 256

INT32_RANGE = (-(2**31), 2**31 - 1)
INT64_RANGE = (-(2**63), 2**63 - 1)
UINT32_RANGE = (0, 2**32 - 1)
UINT64_RANGE = (0, 2**64 - 1)


def dtype_string(dtype: int) -> str:
    """TensorFlow's ``DataTypeString``: ``float``, ``int32``, ``bool``, ..."""
    return types_pb2.DataType.Name(dtype).removeprefix("DT_").lower()


def debug_string(value) -> str:
    """A JSON value as the server quotes it in messages (arrays on one line, cut at 256 bytes)."""

    def write(item, indent: str) -> str:
        if isinstance(item, list):
            return "[" + ", ".join(write(element, indent) for element in item) + "]"
        if isinstance(item, dict):
            inner = indent + "    "
            members = [f"{inner}{json.dumps(k)}: {write(v, inner)}" for k, v in item.items()]
            return "{\n" + ",\n".join(members) + f"\n{indent}}}" if members else "{}"
        return json.dumps(item)

    return write(value, "")[:DEBUG_STRING_BYTES]


def json_type(value) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def parse_body(body: bytes) -> dict:
    """The request's JSON object (trailing bytes after it are ignored, NaN/Infinity allowed)."""
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        text = body.decode("utf-8")
        document, _ = json.JSONDecoder().raw_decode(text.lstrip())
    except UnicodeDecodeError as error:
        raise invalid_argument(
            f"JSON Parse error: Invalid encoding at offset: {error.start}"
        ) from None
    except json.JSONDecodeError as error:
        raise invalid_argument(f"JSON Parse error: {error.msg} at offset: {error.pos}") from None
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {debug_string(document)} Is not object")
    return document


def signature_name(document: dict) -> str:
    """The request's ``signature_name`` ("" when absent)."""
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid_argument(
            f"JSON Value: {debug_string(document)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _type_error(value, dtype: int) -> StatusError:
    return invalid_argument(
        f"JSON Value: {debug_string(value)} Type: {json_type(value)} "
        f"is not of expected type: {dtype_string(dtype)}"
    )


def _integer_in(value, bounds: tuple[int, int]) -> bool:
    return type(value) is int and bounds[0] <= value <= bounds[1]


def _scalar(value, dtype: int):
    """One JSON leaf as a value of ``dtype``, refusing what does not fit without casting."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        accepted = number
    elif dtype in (types_pb2.DT_INT32, types_pb2.DT_INT16, types_pb2.DT_INT8, types_pb2.DT_UINT8):
        accepted = _integer_in(value, INT32_RANGE)
    elif dtype == types_pb2.DT_INT64:
        accepted = _integer_in(value, INT64_RANGE)
    elif dtype == types_pb2.DT_UINT32:
        accepted = _integer_in(value, UINT32_RANGE)
    elif dtype == types_pb2.DT_UINT64:
        accepted = _integer_in(value, UINT64_RANGE)
    elif dtype == types_pb2.DT_BOOL:
        accepted = isinstance(value, bool)
    elif dtype == types_pb2.DT_STRING:
        if _is_b64(value):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except binascii.Error:
                raise invalid_argument("Unable to base64 decode") from None
        if isinstance(value, dict):
            raise invalid_argument(
                f"JSON Value: {debug_string(value)} not formatted correctly for base64 data"
            )
        accepted = isinstance(value, str)
        value = value.encode() if accepted else value
    else:
        raise StatusError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"Conversion of JSON Value: {debug_string(value)} to type: {dtype_string(dtype)}",
        )
    if not accepted:
        raise _type_error(value, dtype)
    return value


def _shape_of(value) -> list[int]:
    """The dense shape read along the first elements: [] for a scalar."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value, level: int, shape: list[int], dtype: int, values: list) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid_argument(
                f"JSON Value: {debug_string(value)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {rank}"
            )
        values.append(_scalar(value, dtype))
        return
    if level >= rank:
        raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid_argument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    for element in value:
        _fill(element, level + 1, shape, dtype, values)


def json_to_array(value, dtype: int) -> np.ndarray:
    """A dense JSON value (scalar or nested lists) as an array of ``dtype``, or a refusal."""
    shape = _shape_of(value)
    values: list = []
    _fill(value, 0, shape, dtype, values)
    numpy_dtype = object if dtype == types_pb2.DT_STRING else tf.as_dtype(dtype).as_numpy_dtype
    try:
        return np.array(values, dtype=numpy_dtype).reshape(shape)
    except OverflowError as error:
        raise invalid_argument(
            f"JSON value out of range of {dtype_string(dtype)}: {error}"
        ) from None


def _shape_string(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(size) for size in shape) + "]"


def _columnar(value, tensor_infos: Mapping[str, meta_graph_pb2.TensorInfo]) -> dict:
    if not isinstance(value, dict) or _is_b64(value):
        if len(tensor_infos) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        ((name, info),) = tensor_infos.items()
        return {name: json_to_array(value, info.dtype)}
    arrays = {}
    for name in sorted(tensor_infos):
        if name not in value:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = json_to_array(value[name], tensor_infos[name].dtype)
    return arrays


def _rows(document: dict, rows, tensor_infos: Mapping[str, meta_graph_pb2.TensorInfo]) -> dict:
    if not isinstance(rows, list):
        raise invalid_argument(
            f"JSON Value: {debug_string(document)} Expecting 'instances' to be an list/array"
        )
    if not rows:
        raise invalid_argument(
            f"JSON Value: {debug_string(document)} No values in 'instances' array"
        )
    objects = isinstance(rows[0], dict) and not _is_b64(rows[0])
    if not isinstance(rows[0], dict) and len(tensor_infos) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    items: dict[str, list[np.ndarray]] = {}

    def add(name: str, value) -> None:
        if name not in tensor_infos:
            raise invalid_argument(f"JSON object: does not have named input: {name}")
        array = json_to_array(value, tensor_infos[name].dtype)
        if items.get(name):
            first = items[name][0]
            if first.size != array.size:
                raise invalid_argument(f"Expecting tensor size: {first.size} but got: {array.size}")
            if first.shape != array.shape:
                raise invalid_argument(
                    f"Expecting shape {_shape_string(first.shape)} but got: "
                    f"{_shape_string(array.shape)}"
                )
        items.setdefault(name, []).append(array)

    for index, row in enumerate(rows):
        row_is_object = isinstance(row, dict) and not _is_b64(row)
        if objects:
            if not row_is_object:
                raise invalid_argument(
                    f"Expecting object but got list at item {index} of input list"
                )
            for name, value in row.items():
                try:
                    add(name, value)
                except StatusError as error:
                    raise invalid_argument(
                        f"Failed to process element: {index} key: {name} of 'instances' list. "
                        f"Error: {absl_status_string(error)}"
                    ) from None
            if set(row) != set(tensor_infos):
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{debug_string(row)} keys must be equal to: {','.join(sorted(tensor_infos))}"
                )
        else:
            if row_is_object:
                raise invalid_argument(
                    f"Expecting value/list but got object at item {index} of input list"
                )
            try:
                add(sorted(tensor_infos)[0], row)
            except StatusError as error:
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. "
                    f"Error: {absl_status_string(error)}"
                ) from None
    return {name: np.stack(arrays) for name, arrays in items.items()}


def fill_predict_request(
    document: dict,
    tensor_infos: Mapping[str, meta_graph_pb2.TensorInfo],
    request: predict_pb2.PredictRequest,
) -> str:
    """Fills ``request.inputs`` from the body; returns its format, ``inputs`` or ``instances``."""
    if INSTANCES in document and INPUTS in document:
        raise invalid_argument(
            f"JSON Value: {debug_string(document)} Not formatted correctly expecting only one "
            "of 'inputs' or 'instances' keys to exist "
        )
    if INSTANCES in document:
        arrays, form = _rows(document, document[INSTANCES], tensor_infos), INSTANCES
    elif INPUTS in document:
        arrays, form = _columnar(document[INPUTS], tensor_infos), INPUTS
    else:
        raise invalid_argument("Missing 'inputs' or 'instances' key")
    for name, array in arrays.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array, dtype=tensor_infos[name].dtype))
    return form


def _json_value(array: np.ndarray):
    if array.dtype == object:
        return np.vectorize(lambda item: item.decode("utf-8", "replace"), otypes=[object])(
            array
        ).tolist()
    return array.tolist()


def outputs_to_json(outputs: Mapping[str, tensor_pb2.TensorProto], form: str) -> dict:
    """The answer body: ``outputs`` (columnar) or ``predictions`` (one entry per row)."""
    arrays = {name: tf.make_ndarray(outputs[name]) for name in sorted(outputs)}
    if form == INPUTS:
        if len(arrays) == 1:
            return {"outputs": _json_value(next(iter(arrays.values())))}
        return {"outputs": {name: _json_value(array) for name, array in arrays.items()}}
    batch = None
    for name, array in arrays.items():
        if array.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                f"expecting: {batch}"
            )
        batch = array.shape[0]
    columns = {name: _json_value(array) for name, array in arrays.items()}
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    return {
        "predictions": [
            {name: column[row] for name, column in columns.items()} for row in range(batch or 0)
        ]
    }
