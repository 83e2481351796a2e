"""Tokenising and the vocabulary: shared by the reviews data and the LSTM that carries it."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

PAD, UNK = "<pad>", "<unk>"
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[!?]")


def tokenize(text: str) -> list[str]:
    """Lower-cased words (keeping contractions) and the punctuation that carries tone."""
    return _TOKEN.findall(text.lower())


def ngrams(text: str, order: int) -> list[str]:
    """The text's tokens, then its runs of 2..order tokens joined by spaces ("not good")."""
    tokens = tokenize(text)
    runs = (tokens[i : i + n] for n in range(2, order + 1) for i in range(len(tokens) - n + 1))
    return [*tokens, *(" ".join(run) for run in runs)]


def build_vocab(texts: Iterable[str], min_freq: int, max_size: int,
                order: int = 1) -> list[str]:
    """Tokens (with order > 1, n-grams up to that order) by falling frequency, ties alphabetical
    so it is deterministic; PAD=0, UNK=1."""
    counts = Counter(gram for text in texts for gram in ngrams(text, order))
    kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
    return [PAD, UNK, *kept[: max_size - 2]]


def word_polarity(texts: Sequence[str], labels: Sequence[int], vocab: list[str],
                  order: int = 1) -> list[float]:
    """Per-word (or n-gram) log-count ratio log(p(word | positive) / p(word | negative)),
    add-one smoothed over texts containing it (the Naive Bayes feature of Wang & Manning,
    2012)."""
    index = {token: i for i, token in enumerate(vocab)}
    counts = np.ones((2, len(vocab)))
    for text, label in zip(texts, labels, strict=True):
        present = {index[t] for t in ngrams(text, order) if t in index}
        counts[int(label), list(present)] += 1
    share = counts / counts.sum(axis=1, keepdims=True)
    polarity = np.log(share[1] / share[0])
    polarity[:2] = 0.0  # padding and unknown carry no sentiment
    return polarity.round(6).tolist()
