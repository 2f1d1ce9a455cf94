"""The deployable part of the output folder: what the Pi runtime needs beside the models.

``metadata.json`` tells the runtime what an input is and how to pad it (``input``: tokens or
features, ``timesteps``, ``features``, ``pad_value``, ``mask_value``), what the outputs mean
(``task``: kind, outputs, class names; ``decision``) and what the float model scored; text
models keep their older keys (``maxlen``, ``vocab``, ``units``, ``embed_dim``,
``reset_after``, ``tokenizer`` constants, ``labels``) and ship ``word_index.txt.gz``, the
Keras word index, one word per line in rank order (380 KB instead of 1.8 MB of JSON).
Feature models have no word index.

``models`` lists every ``.onnx`` / ``.tflite`` file in the folder with its size, SHA-256,
the stages that evaluated it (accuracy, agreement) and its I/O tensors (name, dtype, shape,
int8 ``scale`` / ``zero_point``), read from the file itself so the runtime and a user on
the Pi know what to feed without TensorFlow. ``default_model`` is the one to use first.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .data.text import (
    FILTERS,
    INDEX_FROM,
    OOV_CHAR,
    PAD_ID,
    START_CHAR,
    load_word_index,
    save_ranked_words,
)
from .ir import Bidirectional, ModelIR
from .stages.base import BuildContext

METADATA_FILE = "metadata.json"
WORD_INDEX_FILE = "word_index.txt.gz"
MODEL_SUFFIXES = (".onnx", ".tflite")
DEFAULT_MODELS = ("model_int8.onnx", "model_float.onnx", "model_int8.tflite", "model_float.tflite")
_ONNX_TYPES = {1: "float32", 3: "int8", 2: "uint8", 6: "int32", 7: "int64"}


def _onnx_io(path: Path) -> dict[str, list[dict[str, Any]]]:
    import onnx

    graph = onnx.load(path, load_external_data=False).graph

    def describe(value: Any) -> dict[str, Any]:
        tensor = value.type.tensor_type
        shape = [d.dim_param or d.dim_value for d in tensor.shape.dim]
        dtype = _ONNX_TYPES.get(tensor.elem_type, str(tensor.elem_type))
        return {"name": value.name, "dtype": dtype, "shape": shape}

    return {"inputs": [describe(v) for v in graph.input],
            "outputs": [describe(v) for v in graph.output]}


def _tflite_io(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Read through the ``tflite`` schema package: no interpreter, nothing is run."""
    import tflite

    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    graph = model.Subgraphs(0)
    types = {v: k.lower() for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
    types.update({0: "float32"})

    def describe(index: int) -> dict[str, Any]:
        t = graph.Tensors(index)
        row: dict[str, Any] = {
            "name": (t.Name() or b"").decode("utf-8", "replace"),
            "dtype": types.get(t.Type(), str(t.Type())),
            "shape": [int(d) for d in t.ShapeAsNumpy()],
        }
        q = t.Quantization()
        if q is not None and q.ScaleLength() == 1:
            row["scale"] = float(q.Scale(0))
            row["zero_point"] = int(q.ZeroPoint(0))
        return row

    return {"inputs": [describe(graph.Inputs(i)) for i in range(graph.InputsLength())],
            "outputs": [describe(graph.Outputs(i)) for i in range(graph.OutputsLength())]}


def describe_models(folder: Path, report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every model file in ``folder`` with its evaluating stages and I/O tensors."""
    models: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in folder.iterdir() if p.suffix in MODEL_SUFFIXES):
        entry: dict[str, Any] = {
            "format": path.suffix[1:],
            "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "stages": {
                s["name"]: {"accuracy": s.get("accuracy"), "agreement": s.get("agreement"),
                            "mean_abs_diff": s.get("mean_abs_diff"), "passed": s.get("passed")}
                for s in report.get("stages", []) if s.get("artifact") == path.name
            },
        }
        try:
            entry.update(_onnx_io(path) if path.suffix == ".onnx" else _tflite_io(path))
        except Exception as exc:  # a schema package missing or an odd file: keep the bundle
            entry["io_error"] = f"{type(exc).__name__}: {exc}"[:200]
        models[path.name] = entry
    return models


def write_word_index(ctx: BuildContext) -> bool:
    """Ship the whole index in the compact rank-ordered form the runtime reads.

    Only text models trained on data with a word index (``ctx.data.word_index``) have one;
    returns whether a file was written.
    """
    path = getattr(ctx.data, "word_index", None)
    if ctx.ir.input.kind != "tokens" or path is None:
        return False
    save_ranked_words(load_word_index(path), ctx.out_dir / WORD_INDEX_FILE)
    return True


def _class_names(ctx: BuildContext) -> list[str]:
    names = ctx.ir.task.class_names or tuple(getattr(ctx.data, "class_names", ()) or ())
    return [str(n) for n in names]


def _input(ir: ModelIR) -> dict[str, Any]:
    """How one input looks and is padded (pre-padding, pre-truncation, as Keras pads)."""
    spec = ir.input
    masking, emb = ir.masking, ir.embedding
    if masking is not None:
        mask_value: float | None = float(masking.mask_value)
    elif emb is not None and emb.mask_zero:
        mask_value = 0.0
    else:
        mask_value = None
    return {
        "kind": spec.kind,
        "timesteps": spec.timesteps,
        "features": spec.features,
        "vocab": spec.vocab,
        "pad_value": float(spec.pad_value),
        "mask_value": mask_value,
        "padding": "pre",
        "truncating": "pre",
    }


DECISIONS = {
    "binary": "probability > threshold",
    "binary_logits": "probability = sigmoid(logit) > threshold (logit > 0)",
    "multiclass": "the class with the highest probability",
    "multilabel": "every label whose probability > threshold",
    "regression": "the values themselves (no decision)",
}


def _text_keys(ctx: BuildContext, with_tokenizer: bool) -> dict[str, Any]:
    """The keys text bundles always had (the runtime of older releases reads them)."""
    ir = ctx.ir
    first = ir.recurrent[0]
    gru = first.forward if isinstance(first, Bidirectional) else first
    emb = ir.embedding
    keys: dict[str, Any] = {
        "vocab": ir.input.vocab,
        "units": gru.units,
        "embed_dim": emb.dim if emb is not None else None,
        "reset_after": gru.reset_after,
    }
    if with_tokenizer:
        keys["tokenizer"] = {
            "kind": "keras_imdb",
            "lower": True,
            "filters": FILTERS,
            "split": " ",
            "word_index": WORD_INDEX_FILE,
            "pad_id": PAD_ID,
            "start_char": START_CHAR,
            "oov_char": OOV_CHAR,
            "index_from": INDEX_FROM,
            "padding": "pre",
            "truncating": "pre",
        }
    return keys


def write_bundle(ctx: BuildContext, report: dict[str, Any]) -> None:
    """Write ``metadata.json`` (and, for text models, the word index) next to the models."""
    ir = ctx.ir
    with_tokenizer = write_word_index(ctx)
    task = ir.task
    metadata: dict[str, Any] = {
        "format": "edge_gru-bundle/1",
        "task": {"kind": task.kind, "outputs": task.outputs, "class_names": _class_names(ctx)},
        "input": _input(ir),
        "model": {"name": ir.name, "architecture": ir.describe(),
                  "parameters": ir.parameter_count},
        "maxlen": ir.input.timesteps,
        "threshold": 0.5,
        "decision": DECISIONS[task.kind],
        "float_accuracy": report.get("float_accuracy"),
        "stages": {
            s["name"]: {"artifact": s.get("artifact"), "accuracy": s.get("accuracy"),
                        "agreement": s.get("agreement")}
            for s in report.get("stages", [])
        },
    }
    if ir.input.kind == "tokens":
        metadata.update(_text_keys(ctx, with_tokenizer))
    models = describe_models(ctx.out_dir, report)
    metadata["models"] = models
    metadata["default_model"] = next((m for m in DEFAULT_MODELS if m in models), None)
    if task.kind in ("binary", "binary_logits"):
        names = _class_names(ctx)
        negative, positive = (names[0], names[1]) if len(names) == 2 else ("negative", "positive")
        metadata["labels"] = {positive: "probability > threshold", negative: "otherwise"}
    (ctx.out_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
