"""Raw review text -> token ids, exactly as the Keras IMDB dump was encoded.

Pure Python (no numpy, no TensorFlow) so the Raspberry Pi runtime can import it.
Keras' tokenisation of the IMDB texts: lower-case; replace each character of
``!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~``, tab and newline by a space; split on
spaces; look each word up in the word index (rank 1 = most frequent word);
words missing from the index are dropped. The stored rank ``r`` becomes id
``r + index_from``; ``start_char`` is prepended; ids ``>= num_words`` become
``oov_char``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
_TRANSLATION = str.maketrans({c: " " for c in FILTERS})

PAD_ID = 0
START_CHAR = 1
OOV_CHAR = 2
INDEX_FROM = 3


def tokenize(text: str) -> list[str]:
    """Split a review into words the way Keras' IMDB dump did."""
    return [w for w in text.lower().translate(_TRANSLATION).split(" ") if w]


def load_word_index(path: str | Path) -> dict[str, int]:
    """Read a Keras word index (word -> frequency rank) from JSON."""
    with open(path, encoding="utf-8") as f:
        index = json.load(f)
    if not isinstance(index, dict):
        raise ValueError(f"{path} is not a JSON object of word -> rank")
    return index


def save_ranked_words(index: Mapping[str, int], path: str | Path) -> None:
    """Write the word index as gzip text, one word per line, line ``r`` holding rank ``r``.

    Half the size of the JSON, and the whole index is kept: words past the ``num_words``
    cut must still encode as OOV, while words missing from the index are dropped.
    """
    words = [w for w, _ in sorted(index.items(), key=lambda kv: kv[1])]
    if [index[w] for w in words] != list(range(1, len(words) + 1)):
        raise ValueError("word index ranks are not 1..N")
    payload = "\n".join(words).encode("utf-8")
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write(payload)


def load_ranked_words(path: str | Path) -> dict[str, int]:
    """Read :func:`save_ranked_words`' file (or a JSON index) back into word -> rank."""
    path = Path(path)
    if path.suffix == ".json":
        return load_word_index(path)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return {w: i for i, w in enumerate(f.read().split("\n"), start=1)}


def encode_ranks(ranks: Sequence[int], num_words: int) -> list[int]:
    """Turn raw word ranks into model ids: start char, offset, and the ``num_words`` cut."""
    ids = [START_CHAR] + [r + INDEX_FROM for r in ranks]
    return [i if i < num_words else OOV_CHAR for i in ids]


@dataclass(frozen=True)
class TextEncoder:
    """Encodes raw reviews to the ids the model was trained on (before padding)."""

    word_index: Mapping[str, int]
    num_words: int

    @classmethod
    def from_file(cls, path: str | Path, num_words: int) -> TextEncoder:
        """From a Keras JSON index or the bundle's ``word_index.txt.gz``."""
        return cls(load_ranked_words(path), num_words)

    def ranks(self, text: str) -> list[int]:
        index = self.word_index
        return [index[w] for w in tokenize(text) if w in index]

    def encode(self, text: str) -> list[int]:
        return encode_ranks(self.ranks(text), self.num_words)
