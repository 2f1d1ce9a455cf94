"""Keras -> IR: read a Sequential or Functional model into :class:`~edge_gru.ir.ModelIR`.

Only a single chain of supported layers is accepted; anything else is refused before any
work with one line naming the layer, its position (1 = first layer after the input) and
why (:class:`~edge_gru.errors.EdgeGruError`, exit 2 in the CLIs).

Inference semantics: dropout-like layers are identity, an ``Activation``/``Softmax`` layer
is folded into the linear ``Dense`` before it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ir
from ..errors import EdgeGruError

IDENTITY_AT_INFERENCE = frozenset(
    {
        "Dropout",
        "SpatialDropout1D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
    }
)
ACTIVATIONS = frozenset({"linear", "relu", "tanh", "sigmoid", "softmax"})
REDUCTIONS = {"GlobalAveragePooling1D": "mean", "GlobalMaxPooling1D": "max", "Flatten": "flatten"}
MERGE_MODES = frozenset({"concat", "sum", "mul", "ave"})
WHY_NOT = {
    "LSTM": "LSTM layers are not supported (edge_gru converts GRU models)",
    "SimpleRNN": "SimpleRNN layers are not supported (edge_gru converts GRU models)",
    "Conv1D": "convolutions are not supported",
    "MultiHeadAttention": "attention is not supported",
    "Attention": "attention is not supported",
    "TimeDistributed": "per-step (TimeDistributed) layers are not supported",
    "RNN": "generic RNN layers are not supported; use keras.layers.GRU",
}


def _refuse(position: int, layer: Any, why: str) -> EdgeGruError:
    kind = type(layer).__name__
    return EdgeGruError(f"unsupported model: layer {position} '{layer.name}' ({kind}): {why}")


def _activation_name(fn: Any) -> str:
    name = getattr(fn, "__name__", str(fn))
    return "linear" if name in {"linear", "identity"} else name


def _f32(value: Any) -> np.ndarray:
    return np.array(value, dtype=np.float32)


def _chain(model: Any) -> list[Any]:
    """The model's layers in order; refuses several inputs/outputs, branches and nesting."""
    keras = _keras()
    if not hasattr(model, "layers"):
        raise EdgeGruError("unsupported model: not a Keras model with layers")
    inputs = getattr(model, "inputs", None) or []
    outputs = getattr(model, "outputs", None) or []
    if len(inputs) > 1:
        raise EdgeGruError(
            f"unsupported model: {len(inputs)} inputs ({', '.join(t.name for t in inputs)}); "
            "edge_gru converts one input sequence (no initial_state or side inputs)"
        )
    if len(outputs) > 1:
        raise EdgeGruError(f"unsupported model: {len(outputs)} outputs; edge_gru converts one")
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    previous = inputs[0] if inputs else None
    for position, layer in enumerate(layers, start=1):
        if isinstance(layer, keras.Model):
            raise _refuse(position, layer, "nested models are not supported; flatten it")
        nodes = list(getattr(layer, "_inbound_nodes", []))
        if nodes and previous is not None:
            # A loaded model's layers may carry a call of an earlier build on the same
            # input: the latest call on the previous layer's output is the model's.
            calls = [n for n in nodes if any(t is previous for t in n.arguments.args)][-1:]
            if not calls:
                raise _refuse(position, layer, "the model is not a single chain of layers")
            arguments = calls[0].arguments
            extra = sorted(
                k
                for k in arguments.kwargs
                if k not in {"mask", "training"} and arguments.kwargs[k] is not None
            )
            if "initial_state" in extra:
                raise _refuse(
                    position, layer, "called with initial_state (the state must start at zero)"
                )
            if len(list(arguments.args)) != 1 or extra:
                raise _refuse(position, layer, "called on several tensors")
            previous = calls[0].outputs[0] if len(calls[0].outputs) == 1 else list(calls[0].outputs)
        elif nodes:
            previous = layer.output
        if isinstance(previous, (list, tuple)):
            raise _refuse(
                position, layer, "returns several tensors (return_state=True or merge_mode=None)"
            )
    if outputs and previous is not None and previous is not outputs[0]:
        raise EdgeGruError(
            "unsupported model: it is not a single chain of layers from input to output"
        )
    return layers


def _keras() -> Any:
    import keras

    return keras


def _gru(position: int, layer: Any, name: str | None = None) -> ir.GRU:
    problems = []
    if _activation_name(layer.activation) != "tanh":
        problems.append(f"activation {_activation_name(layer.activation)} (need tanh)")
    if _activation_name(layer.recurrent_activation) != "sigmoid":
        problems.append(
            f"recurrent_activation {_activation_name(layer.recurrent_activation)} (need sigmoid)"
        )
    if getattr(layer, "stateful", False):
        problems.append("stateful=True (state carried across batches)")
    if getattr(layer, "return_state", False):
        problems.append("return_state=True (several outputs)")
    if problems:
        raise _refuse(position, layer, "; ".join(problems))
    cell = layer.cell
    params = cell.get_weights()
    units = int(layer.units)
    zeros = np.zeros(3 * units, np.float32)
    if cell.use_bias:
        kernel, recurrent_kernel, bias = params
        bias = _f32(bias)
        input_bias, recurrent_bias = (bias[0], bias[1]) if layer.reset_after else (bias, zeros)
    else:
        kernel, recurrent_kernel = params
        input_bias, recurrent_bias = zeros, zeros
    return ir.GRU(
        name=name or layer.name,
        kernel=_f32(kernel),
        recurrent_kernel=_f32(recurrent_kernel),
        input_bias=_f32(input_bias),
        recurrent_bias=_f32(recurrent_bias),
        reset_after=bool(layer.reset_after),
        use_bias=bool(cell.use_bias),
        return_sequences=bool(layer.return_sequences),
        go_backwards=bool(layer.go_backwards),
    )


def _translate(position: int, layer: Any) -> ir.Layer | str | None:
    """One Keras layer -> IR layer; None for identity layers, an activation name to fold."""
    kind = type(layer).__name__
    if kind in IDENTITY_AT_INFERENCE:
        return None
    if kind == "Embedding":
        return ir.Embedding(layer.name, _f32(layer.embeddings), bool(layer.mask_zero))
    if kind == "Normalization":
        if getattr(layer, "invert", False):
            raise _refuse(position, layer, "invert=True is not supported")
        axis = tuple(layer.axis) if isinstance(layer.axis, (tuple, list)) else (layer.axis,)
        if axis != (-1,) and axis != (2,):
            raise _refuse(position, layer, f"normalizes axis {axis}; only the feature axis (-1)")
        if not hasattr(layer, "mean") or layer.mean is None:
            raise _refuse(position, layer, "not adapted (no mean/variance)")
        return ir.Normalization(
            layer.name, _f32(layer.mean).reshape(-1), _f32(layer.variance).reshape(-1)
        )
    if kind == "Masking":
        return ir.Masking(layer.name, float(layer.mask_value))
    if kind == "GRU":
        return _gru(position, layer)
    if kind == "Bidirectional":
        fwd, bwd = layer.forward_layer, layer.backward_layer
        if type(fwd).__name__ != "GRU" or type(bwd).__name__ != "GRU":
            raise _refuse(position, layer, f"wraps {type(fwd).__name__}; only GRU is supported")
        if layer.merge_mode not in MERGE_MODES:
            raise _refuse(position, layer, f"merge_mode={layer.merge_mode!r} gives two outputs")
        if getattr(layer, "return_state", False):
            raise _refuse(position, layer, "return_state=True (several outputs)")
        return ir.Bidirectional(
            layer.name,
            _gru(position, fwd, f"{layer.name}/forward"),
            _gru(position, bwd, f"{layer.name}/backward"),
            layer.merge_mode,
        )
    if kind in REDUCTIONS:
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise _refuse(position, layer, "data_format must be channels_last")
        if getattr(layer, "keepdims", False):
            raise _refuse(position, layer, "keepdims=True is not supported")
        return ir.Reduction(layer.name, REDUCTIONS[kind])  # type: ignore[arg-type]
    if kind == "Dense":
        activation = _activation_name(layer.activation)
        if activation not in ACTIVATIONS:
            raise _refuse(position, layer, f"activation {activation} is not supported")
        params = layer.get_weights()
        kernel = _f32(params[0])
        bias = _f32(params[1]) if layer.use_bias else np.zeros(kernel.shape[1], np.float32)
        return ir.Dense(layer.name, kernel, bias, activation, bool(layer.use_bias))  # type: ignore[arg-type]
    if kind in {"Activation", "Softmax"}:
        activation = "softmax" if kind == "Softmax" else _activation_name(layer.activation)
        if activation not in ACTIVATIONS:
            raise _refuse(position, layer, f"activation {activation} is not supported")
        return activation
    raise _refuse(position, layer, WHY_NOT.get(kind, f"{kind} layers are not supported"))


def infer_task(head: ir.Dense) -> ir.TaskKind:
    """The task the output layer implies (see :class:`~edge_gru.ir.Task`)."""
    if head.units == 1:
        if head.activation == "sigmoid":
            return "binary"
        if head.activation == "linear":
            return "binary_logits"
        return "regression"
    if head.activation == "softmax":
        return "multiclass"
    if head.activation == "sigmoid":
        return "multilabel"
    return "regression"


def _input_spec(
    model: Any, first: ir.Layer, timesteps: int | None, default_timesteps: int | None
) -> tuple[ir.InputSpec, str | None]:
    shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else None
    if shape is None:
        raise EdgeGruError("unsupported model: it has no defined input; build it with keras.Input")
    note = None
    if isinstance(first, ir.Embedding):
        if len(shape) != 2:
            raise EdgeGruError(f"unsupported model: token input must be (batch, T), got {shape}")
        length, features = shape[1], None
    else:
        if len(shape) != 3 or shape[2] is None:
            raise EdgeGruError(
                "unsupported model: feature input must be (batch, T, F) with a fixed F, "
                f"got {shape}"
            )
        length, features = shape[1], int(shape[2])
    if length is None:
        length = timesteps if timesteps is not None else default_timesteps
        if length is None:
            raise EdgeGruError("the model's input length is dynamic (None): give --maxlen")
        note = f"the model's input length is dynamic; assumed T = {length} (recipe/--maxlen)"
    elif timesteps is not None and timesteps != length:
        raise EdgeGruError(
            f"--maxlen {timesteps} contradicts the model's fixed input length {length}"
        )
    if isinstance(first, ir.Embedding):
        return ir.InputSpec("tokens", int(length), vocab=first.vocab), note
    return ir.InputSpec("features", int(length), features=features), note


def from_keras(
    model: Any,
    timesteps: int | None = None,
    task: str | None = None,
    class_names: tuple[str, ...] = (),
    default_timesteps: int | None = None,
) -> ir.ModelIR:
    """Translate ``model``; ``task`` overrides the task the output layer implies.

    ``timesteps`` is the length the user asked for (it must match a fixed ``T``);
    ``default_timesteps`` (a recipe's) fills a dynamic ``T`` when ``timesteps`` is None.

    Raises :class:`EdgeGruError` (one line) for anything outside the supported family.
    """
    layers: list[ir.Layer] = []
    sequence = True  # is the current tensor (N, T, D)?
    seen_recurrent = False
    keras_layers = _chain(model)
    for position, layer in enumerate(keras_layers, start=1):
        item = _translate(position, layer)
        if item is None:
            continue
        if isinstance(item, str):
            if (
                not layers
                or not isinstance(layers[-1], ir.Dense)
                or layers[-1].activation != "linear"
            ):
                raise _refuse(position, layer, "an activation layer must follow a linear Dense")
            last = layers[-1]
            layers[-1] = ir.Dense(last.name, last.kernel, last.bias, item, last.use_bias)  # type: ignore[arg-type]
            continue
        if isinstance(item, ir.Embedding) and layers:
            raise _refuse(position, layer, "Embedding must be the first layer")
        if isinstance(item, (ir.Normalization, ir.Masking)) and (
            seen_recurrent or any(isinstance(x, ir.Embedding) for x in layers)
        ):
            raise _refuse(position, layer, "must come before the recurrent layers, on features")
        if isinstance(item, (ir.GRU, ir.Bidirectional)):
            if not sequence:
                raise _refuse(
                    position, layer, "needs a sequence, but the layer before returns its last state"
                )
            seen_recurrent = True
            sequence = item.return_sequences
        if isinstance(item, ir.Reduction):
            if not seen_recurrent or not sequence:
                raise _refuse(
                    position, layer, "reduces over time, but there is no GRU sequence before it"
                )
            sequence = False
        if isinstance(item, ir.Dense):
            if not seen_recurrent:
                raise _refuse(position, layer, "Dense before the recurrent layers is not supported")
            if sequence:
                raise _refuse(
                    position,
                    layer,
                    "applied to every time step of a sequence; reduce over time first "
                    "(GlobalAveragePooling1D, Flatten) or set return_sequences=False",
                )
        layers.append(item)
    if not seen_recurrent:
        raise EdgeGruError("unsupported model: no GRU layer")
    if not layers or not isinstance(layers[-1], ir.Dense):
        raise EdgeGruError("unsupported model: the output must be a Dense layer after the GRU")
    out = layers[-1]
    assert isinstance(out, ir.Dense)
    if out.units == 1 and out.activation == "softmax":
        raise EdgeGruError(f"unsupported model: '{out.name}' is a softmax over one unit (always 1)")
    spec, note = _input_spec(model, layers[0], timesteps, default_timesteps)
    if task is not None and task not in ir.TASKS:
        raise EdgeGruError(f"unknown task {task!r}; expected one of {', '.join(ir.TASKS)}")
    kind = task or infer_task(out)
    if kind in ("binary", "binary_logits") and out.units != 1:
        raise EdgeGruError(f"task {kind} needs a Dense(1) output, the model has {out.units} units")
    if (
        class_names
        and kind != "regression"
        and len(class_names) not in (out.units, 2 if out.units == 1 else -1)
    ):
        raise EdgeGruError(f"{len(class_names)} class names for an output of {out.units} units")
    if spec.kind == "features":
        masking = next((x for x in layers if isinstance(x, ir.Masking)), None)
        if masking is not None:
            spec = ir.InputSpec(
                "features", spec.timesteps, spec.features, pad_value=masking.mask_value
            )
    return ir.ModelIR(
        name=getattr(model, "name", "model"),
        input=spec,
        layers=tuple(layers),
        task=ir.Task(kind, out.units, tuple(class_names)),  # type: ignore[arg-type]
        notes=(note,) if note else (),
    )
