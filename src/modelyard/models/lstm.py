"""Sentiment of a text: embedding -> (bi)LSTM over packed sequences -> pooled -> linear, plus
(when the data gives n-grams) a bag-of-n-grams linear term on the same logit.

The model carries its vocabulary and encodes raw strings itself, so checkpoints and served
models take plain text.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryF1Score,
)

from modelyard.data.text import PAD, UNK, ngrams, tokenize
from modelyard.models.base import ClassifierModule

POOLINGS = ("max", "mean", "last", "max_mean")


class SentimentLSTM(ClassifierModule):
    def __init__(
        self,
        vocab: list[str],
        word_polarity: list[float],
        polarity_init: bool,
        embed_dim: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        pooling: str,
        dropout: float,
        word_dropout: float,
        lr: float,
        weight_decay: float,
        scheduler: str,
        # (defaults: how models were trained before these existed, so their files still load)
        embed_dropout: float = 0.5,
        keep_polarity: bool = False,
        ngrams: list[str] | None = None,
        ngram_polarity: list[float] | None = None,
        ngram_scale: float = 1.0,
    ) -> None:
        super().__init__(lr, weight_decay, scheduler)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if vocab[:2] != [PAD, UNK]:
            raise ValueError("vocabulary must start with the padding and unknown tokens")
        self.save_hyperparameters(logger=False)
        self.index = {token: i for i, token in enumerate(vocab)}
        self.embedding = nn.Embedding(len(vocab), embed_dim, padding_idx=0)
        if polarity_init:
            # Start one embedding channel at each word's train-split sentiment ratio: with
            # ~9k short texts a random start learns slowly and overfits before it catches up.
            with torch.no_grad():
                self.embedding.weight[:, 0] = torch.tensor(word_polarity)
        self.lstm = nn.LSTM(
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.dropout = nn.Dropout(dropout)
        features = hidden_size * (2 if bidirectional else 1) * (2 if pooling == "max_mean" else 1)
        self.head = nn.Linear(features, 1)
        self.pooling = pooling
        self.bag = self.ngram_bag(ngrams or [], ngram_polarity or [], ngram_scale)
        self.init_metrics()

    def ngram_bag(self, grams: list[str], polarity: list[float],
                  scale: float) -> nn.EmbeddingBag | None:
        """One weight per n-gram, summed over the n-grams a text holds: the wide, linear half
        of the model (as NBSVM's), started at `scale` times each n-gram's Naive Bayes
        log-count ratio (summed over a text, whole ratios make overconfident logits). The LSTM
        learns what word order adds to it: negation, contrast, intensity."""
        if not grams:
            return None
        self.ngram_index = {gram: i for i, gram in enumerate(grams)}
        self.ngram_order = 1 + max(gram.count(" ") for gram in grams)
        bag = nn.EmbeddingBag(len(grams), 1, mode="sum")
        with torch.no_grad():
            bag.weight[:, 0] = scale * torch.tensor(polarity)
        return bag

    def make_metrics(self) -> MetricCollection:
        return MetricCollection(
            {"acc": BinaryAccuracy(), "f1": BinaryF1Score(), "auroc": BinaryAUROC()}
        )

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Strings -> padded token ids (B, T) and lengths (B,); an empty text becomes <unk>."""
        unk = self.index[UNK]
        sequences = [
            torch.tensor([self.index.get(t, unk) for t in tokenize(text)] or [unk])
            for text in texts
        ]
        lengths = torch.tensor([len(s) for s in sequences])
        return pad_sequence(sequences, batch_first=True).to(self.device), lengths

    def forward(self, texts: list[str]) -> torch.Tensor:
        """Raw strings -> one logit each (positive sentiment)."""
        ids, lengths = self.encode(texts)
        if self.training and self.hparams.word_dropout > 0:
            # Hide whole words behind <unk> so the model cannot lean on a few rare ones.
            chance = torch.rand(ids.shape, device=ids.device)
            hide = (chance < self.hparams.word_dropout) & (ids > 1)
            ids = ids.masked_fill(hide, self.index[UNK])
        embedded = self.drop_vectors(self.embedding(ids))
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        outputs, (hidden, _) = self.lstm(packed)
        logit = self.head(self.dropout(self.pool(outputs, hidden, lengths))).squeeze(-1)
        return logit if self.bag is None else logit + self.bag_of_ngrams(texts)

    def bag_of_ngrams(self, texts: list[str]) -> torch.Tensor:
        """Each text's sum of its known n-grams' weights (each counted once). While training,
        word_dropout hides n-grams as it hides words, and as with words nothing is rescaled:
        predicting, a text's whole bag counts (every figure in the README was measured so)."""
        bags = [sorted({self.ngram_index[g] for g in ngrams(text, self.ngram_order)
                        if g in self.ngram_index}) for text in texts]
        ids = torch.tensor([i for bag in bags for i in bag], dtype=torch.long, device=self.device)
        offsets = torch.tensor([0, *[len(bag) for bag in bags[:-1]]]).cumsum(0).to(self.device)
        kept = None
        if self.training and self.hparams.word_dropout > 0:
            kept = (torch.rand(ids.shape, device=self.device) >= self.hparams.word_dropout).float()
        return self.bag(ids, offsets, per_sample_weights=kept).squeeze(-1)

    def drop_vectors(self, embedded: torch.Tensor) -> torch.Tensor:
        """Dropout on the word vectors; with `keep_polarity` the polarity channel is spared: it
        is the one a word's sentiment starts in, and hiding it only adds noise to that prior."""
        if not (self.hparams.keep_polarity and self.hparams.polarity_init):
            return self.embed_dropout(embedded)
        return torch.cat([embedded[..., :1], self.embed_dropout(embedded[..., 1:])], dim=-1)

    def pool(self, outputs: torch.Tensor, hidden: torch.Tensor,
             lengths: torch.Tensor) -> torch.Tensor:
        """The LSTM's outputs over a text -> one vector: the last states, the maximum or mean
        over time, or the maximum and the mean side by side."""
        if self.pooling == "last":
            last = hidden[-2:] if self.lstm.bidirectional else hidden[-1:]
            return torch.cat(list(last), dim=-1)
        padded, _ = pad_packed_sequence(outputs, batch_first=True)
        mask = (torch.arange(padded.shape[1]) < lengths[:, None]).to(self.device)[..., None]
        highest = padded.masked_fill(~mask, float("-inf")).amax(dim=1)
        mean = padded.sum(dim=1) / lengths.to(self.device)[:, None]
        return {"max": highest, "mean": mean,
                "max_mean": torch.cat([highest, mean], dim=-1)}[self.pooling]

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(output, target.float())

    def scores(self, output: torch.Tensor) -> torch.Tensor:
        return output.sigmoid()

    def predict_from_scores(self, scores: torch.Tensor) -> torch.Tensor:
        return (scores >= 0.5).long()
