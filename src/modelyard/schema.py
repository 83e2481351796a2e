"""Typed schemas for the configs users override most: Hydra structured configs.

A YAML file in conf/model or conf/data may start from a schema (`defaults: [<name>_schema,
_self_]`), so composing already refuses a wrongly typed value (`model.lr=abc`) and an unknown
key, even one added with `+`; `validate` then checks the ranges a type cannot express. Both
happen before torch loads, in one line. A schema is a dataclass declared with `@schema(group,
name)`; a config without one (a new model's, say) is still checked for the kinds of values
its overrides keep (config.check_overrides) and for its constructor's arguments when built.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from modelyard.errors import ConfigError

SCHEDULERS = ("none", "cosine", "onecycle")
# (group, name) -> schema, filled by @schema; and which data schema a model schema trains on
SCHEMAS: dict[tuple[str, str], type] = {}
TRAINS_ON: dict[type, type] = {}


def schema(group: str, name: str, trains_on: type | None = None):
    """Declare a dataclass as the schema `<group>/<name>_schema`; `trains_on`: the data
    schema (or a base of it) a model takes its inputs' statistics or vocabulary from."""

    def declare(cls: type) -> type:
        SCHEMAS[(group, name)] = cls
        if trains_on is not None:
            TRAINS_ON[cls] = trains_on
        return cls

    return declare


POOLINGS = ("max", "mean", "last", "max_mean")  # the LSTM's (kept here: no torch import)


def _positive(name: str, value: float | int) -> None:
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")


def _fraction(name: str, value: float) -> None:
    if not 0 <= value < 1:
        raise ConfigError(f"{name} must be in [0, 1), got {value}")


@dataclass
class OptimConfig:
    """What every model takes for its optimiser."""

    lr: float = MISSING
    weight_decay: float = 0.0
    scheduler: str = "cosine"

    def __post_init__(self) -> None:
        _positive("model.lr", self.lr)
        if self.weight_decay < 0:
            raise ConfigError(f"model.weight_decay must be >= 0, got {self.weight_decay}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"model.scheduler must be one of {', '.join(SCHEDULERS)}, "
                              f"got {self.scheduler!r}")


@dataclass
class DataConfig:
    """What every DataModule takes: a directory of splits and how to batch them."""

    path: str = MISSING
    batch_size: int = 64
    num_workers: int = 0

    def __post_init__(self) -> None:
        _positive("data.batch_size", self.batch_size)
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {self.num_workers}")


@schema("data", "table")
@dataclass
class TableDataConfig(DataConfig):
    """Any table: named feature columns and a target, a value or (classification) a label."""

    _target_: str = "modelyard.data.table.TableDataModule"
    features: list[str] = field(default_factory=list)
    target: str = MISSING
    classification: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.features:
            raise ConfigError("data.features is empty: name the feature columns")
        if self.target in self.features:
            raise ConfigError(f"data.target {self.target!r} is also one of data.features")


@schema("data", "market")
@dataclass
class MarketDataConfig(TableDataConfig):
    _target_: str = "modelyard.data.market.MarketDataModule"
    target: str = "log_gdp"


@dataclass
class AugmentConfig:
    max_rotation_deg: float = 10.0
    max_shift_px: float = 2.0
    max_scale: float = 0.1


@schema("data", "digits")
@dataclass
class DigitsDataConfig(DataConfig):
    _target_: str = "modelyard.data.digits.DigitsDataModule"
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    target: str = "digit"
    classes: list[Any] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.classes is not None and len(self.classes) != 10:
            raise ConfigError(f"data.classes names the 10 digit classes, got "
                              f"{len(self.classes)}")


@schema("data", "reviews")
@dataclass
class ReviewsDataConfig(DataConfig):
    _target_: str = "modelyard.data.reviews.ReviewsDataModule"
    text_column: str = "text"
    label_column: str = "label"
    classes: list[Any] = field(default_factory=lambda: ["negative", "positive"])
    min_freq: int = 2
    max_vocab: int = 20000
    ngram_order: int = 0
    ngram_min_freq: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("data.min_freq", self.min_freq)
        _positive("data.max_vocab", self.max_vocab)
        _positive("data.ngram_min_freq", self.ngram_min_freq)
        if self.ngram_order < 0:
            raise ConfigError(f"data.ngram_order must be >= 0 (0: no bag of n-grams), "
                             f"got {self.ngram_order}")
        if len(self.classes) != 2:
            raise ConfigError(f"data.classes names labels 0 and 1, got {list(self.classes)}")


@schema("model", "regressor", trains_on=TableDataConfig)
@dataclass
class RegressorConfig(OptimConfig):
    _target_: str = "modelyard.models.regressor.MarketRegressor"
    _partial_: bool = True
    hidden_sizes: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        for size in self.hidden_sizes:
            _positive("model.hidden_sizes", size)


@schema("model", "cnn", trains_on=DigitsDataConfig)
@dataclass
class CNNConfig(OptimConfig):
    _target_: str = "modelyard.models.cnn.DigitCNN"
    _partial_: bool = True
    channels: list[int] = field(default_factory=lambda: [32, 64])
    kernel_size: int = 5
    fc_units: int = 1024
    dropout: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("kernel_size", "fc_units"):
            _positive(f"model.{name}", getattr(self, name))
        for channels in self.channels:
            _positive("model.channels", channels)
        _fraction("model.dropout", self.dropout)


@schema("model", "lstm", trains_on=ReviewsDataConfig)
@dataclass
class LSTMConfig(OptimConfig):
    _target_: str = "modelyard.models.lstm.SentimentLSTM"
    _partial_: bool = True
    polarity_init: bool = True
    embed_dim: int = 128
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    pooling: str = "max"
    dropout: float = 0.5
    embed_dropout: float = 0.5
    keep_polarity: bool = False
    word_dropout: float = 0.25
    ngram_scale: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("embed_dim", "hidden_size", "num_layers", "ngram_scale"):
            _positive(f"model.{name}", getattr(self, name))
        for name in ("dropout", "embed_dropout", "word_dropout"):
            _fraction(f"model.{name}", getattr(self, name))
        if self.pooling not in POOLINGS:
            raise ConfigError(f"model.pooling must be one of {', '.join(POOLINGS)}, "
                              f"got {self.pooling!r}")


def register() -> None:
    """Put the schemas in Hydra's ConfigStore as `<group>/<name>_schema`; idempotent."""
    store = ConfigStore.instance()
    for (group, name), node in SCHEMAS.items():
        store.store(group=group, name=f"{name}_schema", node=node)


def validate(cfg: DictConfig) -> None:
    """Ranges no type expresses, for every node with a schema, and the run-level numbers."""
    types = {}
    for group in sorted({group for group, _ in SCHEMAS}):
        node = cfg.get(group)
        if isinstance(node, DictConfig) and OmegaConf.get_type(node) not in (dict, None):
            types[group] = OmegaConf.get_type(node)
            known = {f.name for f in fields(types[group])}
            unknown = sorted(set(node.keys()) - known)  # `+key=` opens even a typed node
            if unknown:
                takes = ", ".join(sorted(known - {"_target_", "_partial_"}))
                raise ConfigError(f"unknown key(s) {', '.join(f'{group}.{k}' for k in unknown)};"
                                  f" {group} takes {takes}")
            OmegaConf.to_object(node)  # builds the dataclass: its __post_init__ checks
    needed = TRAINS_ON.get(types.get("model"))
    if needed and types.get("data") is not None and not issubclass(types["data"], needed):
        names = {node: name for (_, name), node in SCHEMAS.items()}
        raise ConfigError(f"model {names[types['model']]} trains on data={names[needed]}, "
                          f"not data={names[types['data']]}")
    trainer: Any = cfg.get("trainer") or {}
    epochs = trainer.get("max_epochs")
    if epochs is not None and epochs < 1:
        raise ConfigError(f"trainer.max_epochs must be >= 1, got {epochs}")
