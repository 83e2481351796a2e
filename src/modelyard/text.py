"""Tokenising and the vocabulary: shared by the reviews data and the LSTM that carries it."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

PAD, UNK = "<pad>", "<unk>"
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[!?]")


def tokenize(text: str) -> list[str]:
    """Lower-cased words (keeping contractions) and the punctuation that carries tone."""
    return _TOKEN.findall(text.lower())


def build_vocab(texts: Iterable[str], min_freq: int, max_size: int) -> list[str]:
    """Tokens by falling frequency (ties alphabetical, so it is deterministic); PAD=0, UNK=1."""
    counts = Counter(token for text in texts for token in tokenize(text))
    kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
    return [PAD, UNK, *kept[: max_size - 2]]
