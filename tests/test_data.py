"""Data: splits that keep classes balanced and countries apart, prepared datasets with a
manifest that notices any changed byte, and the tokenizer and vocabulary the reviews share
with the LSTM."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.data.manifest import MANIFEST, verify, write_manifest
from modelyard.data.prepare import group_split, prepare, stratified_split, write_npz
from modelyard.data.text import PAD, UNK, build_vocab, ngrams, tokenize, word_polarity
from modelyard.errors import DataError

from conftest import run_cli

FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}


# -- splits --------------------------------------------------------------------------------


def test_stratified_split_partitions_the_rows_and_keeps_class_shares() -> None:
    labels = np.repeat([0, 1, 2], [500, 300, 200])
    splits = stratified_split(labels, FRACTIONS, seed=0)
    joined = np.concatenate(list(splits.values()))
    assert sorted(joined) == list(range(len(labels)))  # every row once
    for split, fraction in FRACTIONS.items():
        rows = splits[split]
        assert len(rows) == pytest.approx(fraction * len(labels), abs=2)
        shares = np.bincount(labels[rows], minlength=3) / len(rows)
        assert shares == pytest.approx([0.5, 0.3, 0.2], abs=0.02)
    again = stratified_split(labels, FRACTIONS, seed=0)
    assert all(np.array_equal(splits[s], again[s]) for s in FRACTIONS)  # seeded


def test_group_split_keeps_every_group_in_one_split() -> None:
    groups = pd.Series([f"country{i % 40}" for i in range(400)])
    splits = group_split(groups, FRACTIONS, seed=1)
    assert sorted(np.concatenate(list(splits.values()))) == list(range(400))
    members = {split: set(groups.iloc[rows]) for split, rows in splits.items()}
    assert not members["train"] & members["val"]
    assert not members["train"] & members["test"]
    assert not members["val"] & members["test"]
    assert [len(members[s]) for s in FRACTIONS] == [28, 4, 8]


def test_prepared_market_splits_by_country_and_digits_by_class(data_dir: Path) -> None:
    countries = {split: set(pd.read_csv(data_dir / "market" / f"{split}.csv")["country"])
                 for split in FRACTIONS}
    assert not countries["train"] & countries["test"]
    assert not countries["val"] & (countries["train"] | countries["test"])
    labels = {split: np.load(data_dir / "digits" / f"{split}.npz")["labels"]
              for split in FRACTIONS}
    overall = np.bincount(np.concatenate(list(labels.values())), minlength=10)
    for split in FRACTIONS:
        shares = np.bincount(labels[split], minlength=10) / len(labels[split])
        assert shares == pytest.approx(overall / overall.sum(), abs=0.01)


def test_prepare_refuses_unknown_datasets_and_bad_fractions(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cifar"):
        prepare("cifar", tmp_path, FRACTIONS, 42)
    with pytest.raises(DataError, match="summing to 1"):
        prepare("market", tmp_path, {"train": 0.7, "val": 0.1, "test": 0.3}, 42)
    with pytest.raises(DataError, match="train/val/test"):
        prepare("market", tmp_path, {"train": 0.8, "test": 0.2}, 42)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_prepare_is_deterministic_and_replaces_a_dataset_whole(data_dir: Path,
                                                               tmp_path: Path) -> None:
    """Same seed, same bytes as the session's data; a re-prepare replaces the directory."""
    target = prepare("market", tmp_path, FRACTIONS, 42)
    assert target == tmp_path / "market"
    (target / "stray.csv").write_text("left over\n")
    prepare("market", tmp_path, FRACTIONS, 42)
    assert sorted(p.name for p in target.iterdir()) == sorted(
        p.name for p in (data_dir / "market").iterdir())
    for file in (data_dir / "market").iterdir():
        assert (target / file.name).read_bytes() == file.read_bytes(), file.name
    assert [p.name for p in tmp_path.iterdir()] == ["market"]  # no staging directory left


# -- manifests -----------------------------------------------------------------------------


def test_manifest_lists_every_split_with_its_rows_and_hash(data_dir: Path) -> None:
    for dataset, suffix in (("market", ".csv"), ("digits", ".npz"), ("reviews", ".csv")):
        directory = data_dir / dataset
        manifest = json.loads((directory / MANIFEST).read_text())
        assert manifest["dataset"] == dataset
        assert set(manifest["files"]) == {f"{split}{suffix}" for split in FRACTIONS}
        for name, entry in manifest["files"].items():
            content = (directory / name).read_bytes()
            assert entry["sha256"] == hashlib.sha256(content).hexdigest()
        rows = {name: entry["rows"] for name, entry in manifest["files"].items()}
        if suffix == ".csv":
            assert rows == {name: len(pd.read_csv(directory / name)) for name in rows}
        else:
            assert rows == {name: len(np.load(directory / name)["labels"]) for name in rows}
        assert verify(directory) == hashlib.sha256(
            (directory / MANIFEST).read_bytes()).hexdigest()


@pytest.fixture()
def market_copy(data_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "market"
    shutil.copytree(data_dir / "market", copy)
    return copy


def test_verify_names_a_changed_byte(market_copy: Path) -> None:
    target = market_copy / "val.csv"
    raw = bytearray(target.read_bytes())
    raw[-3] = ord("7") if raw[-3] != ord("7") else ord("8")
    target.write_bytes(bytes(raw))
    with pytest.raises(DataError) as caught:
        verify(market_copy)
    assert "val.csv" in str(caught.value) and "sha256" in str(caught.value)
    assert "modelyard prepare" in str(caught.value)


def test_verify_names_a_missing_file_and_an_unreadable_manifest(market_copy: Path) -> None:
    (market_copy / "test.csv").unlink()
    with pytest.raises(DataError, match="test.csv: missing"):
        verify(market_copy)
    (market_copy / MANIFEST).write_text("{not json")
    with pytest.raises(DataError, match="unreadable manifest"):
        verify(market_copy)


def test_a_directory_without_manifest_is_accepted_as_it_is(market_copy: Path) -> None:
    (market_copy / MANIFEST).unlink()
    assert verify(market_copy) is None


def test_written_manifest_verifies_until_a_file_changes(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n2\n")
    write_manifest(tmp_path, {"a.csv": 2}, {"dataset": "tiny"})
    assert json.loads((tmp_path / MANIFEST).read_text())["files"]["a.csv"]["rows"] == 2
    assert verify(tmp_path) is not None
    (tmp_path / "a.csv").write_text("x\n1\n3\n")
    with pytest.raises(DataError, match="a.csv"):
        verify(tmp_path)


# -- text ----------------------------------------------------------------------------------


def test_tokenize_lowercases_keeps_contractions_and_tone_marks() -> None:
    assert tokenize("It's GREAT, isn't it?! 10/10") == [
        "it's", "great", "isn't", "it", "?", "!", "10", "10"]
    assert tokenize("...") == []


def test_vocabulary_by_falling_frequency_ties_alphabetical_after_pad_and_unk() -> None:
    texts = ["b a c", "a b", "a d", "e"]  # a:3, b:2, c:1, d:1, e:1
    assert build_vocab(texts, min_freq=1, max_size=100) == [PAD, UNK, "a", "b", "c", "d", "e"]
    assert build_vocab(texts, min_freq=2, max_size=100) == [PAD, UNK, "a", "b"]
    assert build_vocab(texts, min_freq=1, max_size=4) == [PAD, UNK, "a", "b"]


def test_word_polarity_signs_words_by_the_label_they_come_with() -> None:
    texts = ["great film", "great cast", "dull film", "dull plot"]
    labels = [1, 1, 0, 0]
    vocab = build_vocab(texts, min_freq=1, max_size=100)
    polarity = dict(zip(vocab, word_polarity(texts, labels, vocab), strict=True))
    assert polarity["great"] > 0 > polarity["dull"]
    assert polarity["film"] == pytest.approx(0.0)  # once on each side
    assert polarity[PAD] == polarity[UNK] == 0.0


def test_ngrams_are_the_tokens_then_the_runs_of_two_to_order_tokens() -> None:
    assert ngrams("Not good, at all", 1) == ["not", "good", "at", "all"]
    assert ngrams("Not good, at all", 2) == [
        "not", "good", "at", "all", "not good", "good at", "at all"]
    assert ngrams("not good at", 3)[-1] == "not good at"
    assert ngrams("", 2) == [] and ngrams("fine", 3) == ["fine"]


def test_bigram_polarity_can_oppose_its_words() -> None:
    """What a bag of bigrams adds to words: "not good" is negative though "good" is not."""
    texts = ["good film", "good cast", "not good", "not good at all", "not bad"]
    labels = [1, 1, 0, 0, 1]
    vocab = build_vocab(texts, min_freq=2, max_size=100, order=2)
    assert vocab == [PAD, UNK, "good", "not", "not good"]
    polarity = dict(zip(vocab, word_polarity(texts, labels, vocab, order=2), strict=True))
    assert polarity["good"] > 0 > polarity["not good"]


# -- the command ---------------------------------------------------------------------------


@pytest.mark.slow
def test_prepare_command_writes_the_same_datasets(data_dir: Path, tmp_path: Path) -> None:
    """`modelyard prepare all` is what the session's fixture does in-process: same bytes."""
    result = run_cli("prepare", "all", f"out_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    for dataset in ("market", "digits", "reviews"):
        assert (tmp_path / dataset / MANIFEST).read_bytes() == \
            (data_dir / dataset / MANIFEST).read_bytes(), dataset
        assert verify(tmp_path / dataset) is not None


def test_npz_bytes_depend_only_on_the_arrays(tmp_path: Path) -> None:
    """The digits' DVC hash must not change with the Python that wrote them: numpy's own
    writer forces zip64 headers, whose bytes differ before Python 3.11.4."""
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    labels = np.array([3, 7])
    write_npz(tmp_path / "a.npz", images=images, labels=labels)
    time.sleep(2.1)  # a zip timestamp has 2-second steps
    write_npz(tmp_path / "b.npz", images=images, labels=labels)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    members = zipfile.ZipFile(tmp_path / "a.npz").infolist()
    assert [m.extract_version for m in members] == [20, 20]  # no zip64: the same everywhere
    loaded = np.load(tmp_path / "a.npz", allow_pickle=False)
    assert (loaded["images"] == images).all() and (loaded["labels"] == labels).all()
