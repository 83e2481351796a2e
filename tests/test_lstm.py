"""The sentiment LSTM's parts: pooling, where dropout falls, its bag-of-n-grams term, and files
from before its newer options still loading (registered champions were trained without them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modelyard.data.text import PAD, UNK
from modelyard.models.lstm import SentimentLSTM
from modelyard.training.export import export_model, load_model, weights_sha256

VOCAB = [PAD, UNK, "good", "bad", "film", "a"]
POLARITY = [0.0, 0.0, 1.5, -1.5, 0.1, 0.0]
TEXTS = ["a good film", "a bad film", "", "good good bad"]


def lstm(**changes: object) -> SentimentLSTM:
    torch.manual_seed(0)
    settings = {
        "vocab": VOCAB, "word_polarity": POLARITY, "polarity_init": True, "embed_dim": 8,
        "hidden_size": 6, "num_layers": 1, "bidirectional": True, "pooling": "max",
        "dropout": 0.5, "word_dropout": 0.0, "lr": 1e-3, "weight_decay": 0.0,
        "scheduler": "none", "embed_dropout": 0.5, "keep_polarity": False,
    }
    return SentimentLSTM(**{**settings, **changes})


@pytest.mark.parametrize("pooling", ["max", "mean", "last", "max_mean"])
def test_every_pooling_gives_one_logit_per_text(pooling: str) -> None:
    model = lstm(pooling=pooling).eval()
    assert model.head.in_features == 12 * (2 if pooling == "max_mean" else 1)
    logits = model(TEXTS)
    assert logits.shape == (4,) and torch.isfinite(logits).all()


def test_max_mean_pooling_is_the_max_and_the_mean_side_by_side() -> None:
    both = lstm(pooling="max_mean").eval()
    ids, lengths = both.encode(TEXTS)
    with torch.no_grad():
        outputs, (hidden, _) = both.lstm(torch.nn.utils.rnn.pack_padded_sequence(
            both.embedding(ids), lengths, batch_first=True, enforce_sorted=False))
        pooled = both.pool(outputs, hidden, lengths)
    both.pooling = "max"
    highest = both.pool(outputs, hidden, lengths)
    both.pooling = "mean"
    mean = both.pool(outputs, hidden, lengths)
    assert torch.equal(pooled, torch.cat([highest, mean], dim=-1))


def test_keep_polarity_spares_only_the_polarity_channel_from_embedding_dropout() -> None:
    vectors = torch.ones(64, 20, 8)
    kept = lstm(keep_polarity=True, embed_dropout=0.5).train().drop_vectors(vectors)
    assert torch.equal(kept[..., 0], vectors[..., 0])
    assert (kept[..., 1:] == 0).any() and (kept[..., 1:] == 2).any()  # dropped, rescaled
    dropped = lstm(keep_polarity=False, embed_dropout=0.5).train().drop_vectors(vectors)
    assert (dropped[..., 0] == 0).any()
    # no dropout at all when predicting
    assert torch.equal(lstm(embed_dropout=0.5).eval().drop_vectors(vectors), vectors)


def test_a_model_file_from_before_the_newer_options_loads_as_it_was_trained(
    tmp_path: Path,
) -> None:
    model = lstm().eval()
    path = tmp_path / "model.ckpt"
    export_model(model, path)
    payload = torch.load(path, weights_only=True)
    for newer in ("embed_dropout", "keep_polarity"):
        del payload[SentimentLSTM.CHECKPOINT_HYPER_PARAMS_KEY][newer]
    torch.save(payload, path)
    old = load_model(SentimentLSTM, path).eval()
    assert weights_sha256(old.state_dict()) == weights_sha256(model.state_dict())
    assert not old.hparams.keep_polarity and old.hparams.embed_dropout == 0.5
    with torch.no_grad():
        assert torch.equal(old(TEXTS), model(TEXTS))


NGRAMS = ["good", "bad", "good good", "good bad", "not good"]
NGRAM_POLARITY = [1.0, -1.0, 0.5, 0.25, -2.0]


def test_the_bag_adds_each_known_ngrams_weight_once_to_the_lstms_logit() -> None:
    alone = lstm().eval()
    wide = lstm(ngrams=NGRAMS, ngram_polarity=NGRAM_POLARITY).eval()
    with torch.no_grad():
        added = wide(TEXTS) - alone(TEXTS)  # same seed: the same LSTM and head
    # "a good film": good; "a bad film": bad; "": nothing;
    # "good good bad": good, bad, good good, good bad (each once)
    assert added.tolist() == pytest.approx([1.0, -1.0, 0.0, 0.75], abs=1e-6)
    assert lstm().bag is None
    scaled = lstm(ngrams=NGRAMS, ngram_polarity=NGRAM_POLARITY, ngram_scale=0.2).eval()
    with torch.no_grad():
        assert (scaled(TEXTS) - alone(TEXTS)).tolist() == pytest.approx(
            [0.2, -0.2, 0.0, 0.15], abs=1e-6)


def test_word_dropout_hides_ngrams_only_while_training() -> None:
    wide = lstm(ngrams=NGRAMS, ngram_polarity=NGRAM_POLARITY, word_dropout=0.5)
    texts = ["good good bad"] * 400
    with torch.no_grad():
        assert wide.eval().bag_of_ngrams(texts).unique().tolist() == pytest.approx([0.75])
        trained = wide.train().bag_of_ngrams(texts)
    assert len(trained.unique()) > 4  # subsets of the four n-grams
    assert trained.mean().item() == pytest.approx(0.75 / 2, abs=0.1)


def test_a_model_with_a_bag_round_trips_through_its_file(tmp_path: Path) -> None:
    model = lstm(ngrams=NGRAMS, ngram_polarity=NGRAM_POLARITY).eval()
    path = tmp_path / "model.ckpt"
    export_model(model, path)
    loaded = load_model(SentimentLSTM, path).eval()
    with torch.no_grad():
        assert torch.equal(loaded(TEXTS), model(TEXTS))
