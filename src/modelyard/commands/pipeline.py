"""`modelyard prepare`, `plots` and `report`: the DVC pipeline's data, figures and the pull
request's report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelyard.errors import ConfigError


def prepare(options: argparse.Namespace) -> None:
    from omegaconf import OmegaConf

    from modelyard.config import compose
    from modelyard.data.prepare import PREPARERS, prepare

    if options.dataset != "all" and options.dataset not in PREPARERS:
        raise ConfigError(f"unknown dataset {options.dataset!r}: {', '.join(PREPARERS)} or all")
    names = list(PREPARERS) if options.dataset == "all" else [options.dataset]
    cfg = compose("prepare", options.overrides)
    fractions = OmegaConf.to_container(cfg.split, resolve=True)
    for name in names:
        print(f"prepared {name}: {prepare(name, Path(cfg.out_dir), fractions, int(cfg.seed))}")


def plots(options: argparse.Namespace) -> None:
    from modelyard.plots import write_pipeline_plots

    for path in write_pipeline_plots(options.task):
        print(f"wrote {path}")


def report(options: argparse.Namespace) -> None:
    from modelyard import project
    from modelyard.report import write_report

    markdown = write_report(
        project.root(), options.base,
        repro_log=Path(options.repro_log) if options.repro_log else None,
        output=Path(options.output) if options.output else None,
        images_dir=Path(options.images_dir) if options.images_dir else None)
    if options.output:
        print(f"wrote {options.output}", file=sys.stderr)
    else:
        print(markdown, end="")
