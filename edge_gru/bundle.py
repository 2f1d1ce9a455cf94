"""The deployable part of the output folder: what the Pi runtime needs beside the models.

``metadata.json`` tells the runtime how to encode and pad text (maxlen, vocab, tokenizer
constants) and what the float model scored; ``word_index.txt.gz`` is the Keras word index,
one word per line in rank order (380 KB instead of 1.8 MB of JSON).
"""

from __future__ import annotations

import json
from typing import Any

from .stage import BuildContext
from .text import (
    FILTERS,
    INDEX_FROM,
    OOV_CHAR,
    PAD_ID,
    START_CHAR,
    load_word_index,
    save_ranked_words,
)

METADATA_FILE = "metadata.json"
WORD_INDEX_FILE = "word_index.txt.gz"


def write_word_index(ctx: BuildContext) -> None:
    """Ship the whole index in the compact rank-ordered form the runtime reads."""
    save_ranked_words(load_word_index(ctx.data.source.word_index), ctx.out_dir / WORD_INDEX_FILE)


def write_bundle(ctx: BuildContext, report: dict[str, Any]) -> None:
    """Write ``metadata.json`` and the word index next to the models."""
    write_word_index(ctx)
    w = ctx.weights
    metadata = {
        "format": "edge_gru-bundle/1",
        "maxlen": w.maxlen,
        "vocab": w.vocab,
        "units": w.units,
        "embed_dim": w.embed_dim,
        "reset_after": w.reset_after,
        "tokenizer": {
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
        },
        "threshold": 0.5,
        "float_accuracy": report["float_accuracy"],
        "stages": {
            s["name"]: {"artifact": s.get("artifact"), "accuracy": s.get("accuracy"),
                        "agreement": s.get("agreement")}
            for s in report["stages"]
        },
    }
    (ctx.out_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
