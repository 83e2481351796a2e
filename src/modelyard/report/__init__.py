"""`modelyard report`: what this revision did to the pipeline against a base revision, as
markdown for a pull request: per task the test metrics of both with the difference, the params
that differ, the figures that changed (both images, written beside the report and linked
relatively, so `cml comment` can upload them), and which stages `dvc repro` ran, restored from
the run-cache or left alone."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from modelyard.errors import ConfigError
from modelyard.report import collect, stages
from modelyard.report.markdown import TaskSection, render

PLOTS_DIR = "pipeline/{task}/plots"  # where the plots@<task> stage writes its images


def task_of_figure(path: str) -> str:
    parts = Path(path).parts
    return parts[1] if len(parts) > 2 and parts[0] == "pipeline" else Path(path).parent.name


def writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot write the report into {directory}: "
                          f"{err.strerror or err}") from None
    if not os.access(directory, os.W_OK):
        raise ConfigError(f"cannot write the report into {directory}: not writable")


def build(root: Path, base_name: str, repro_log: Path | None,
          images_dir: Path, link_from: Path) -> str:
    """The markdown; changed figures are copied into `images_dir`, linked relative to
    `link_from` (the directory the report is written to)."""
    collect.check_repository(root)
    base = collect.revision(root, base_name)
    outcomes = stages.read(repro_log) if repro_log is not None else None
    this = collect.git(root, "rev-parse", "HEAD")
    metrics = collect.metrics(root, base)
    params = collect.params(root, base)
    tasks: dict[str, TaskSection] = {
        task: TaskSection(metrics=changes, params=params.get(task, []))
        for task, changes in sorted(metrics.items())}
    for task in sorted(set(params) - set(tasks)):
        tasks[task] = TaskSection(params=params[task])
    with tempfile.TemporaryDirectory(prefix="modelyard-report-") as scratch:
        targets = [PLOTS_DIR.format(task=task) for task in tasks]
        found = collect.figures(root, base, targets, Path(scratch))
        for path, figure in sorted(found.items()):
            section = tasks.setdefault(task_of_figure(path), TaskSection())
            if not figure.changed:
                section.unchanged_figures += 1
                continue
            writable(images_dir)
            links = []
            for side, image in (("base", figure.base), ("this", figure.this)):
                if image is None:
                    links.append(None)
                    continue
                target = images_dir / f"{task_of_figure(path)}-{Path(path).stem}-{side}.png"
                shutil.copyfile(image, target)
                links.append(Path(os.path.relpath(target, link_from)).as_posix())
            section.figures.append((Path(path).stem, *links))
    return render(base.name, base.commit, this, outcomes, tasks)


def write_report(root: Path, base: str, repro_log: Path | None = None,
                 output: Path | None = None, images_dir: Path | None = None) -> str:
    """Build the report; write it to `output` whole (a temporary file renamed into place),
    images into `images_dir` (default: `<output stem>-plots/` beside it, or `report-plots/`
    in the working directory when the report goes to stdout). Returns the markdown."""
    where = (output.parent if output else Path.cwd()).resolve()
    images = (images_dir or (where / f"{output.stem}-plots" if output else where
                             / "report-plots")).resolve()
    writable(where)
    markdown = build(root, base, repro_log, images, where)
    if output is not None:
        partial = output.with_name(f".{output.name}.partial")
        partial.write_text(markdown)
        partial.replace(output)
    return markdown
