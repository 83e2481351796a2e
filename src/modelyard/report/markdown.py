"""The report as GitHub-flavoured markdown: a pull request comment a reviewer reads top to
bottom: what the pipeline did, then per task its test metrics, changed params and figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from modelyard.report import stages
from modelyard.report.collect import Change

TITLE = "## modelyard pipeline report"


@dataclass
class TaskSection:
    metrics: list[Change] = field(default_factory=list)
    params: list[Change] = field(default_factory=list)
    # (figure name, base image link or None, this image link or None); changed ones only
    figures: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    unchanged_figures: int = 0


def number(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"`{value}`"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def change(base: object, this: object) -> str:
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (base, this))
    if not numeric:
        return "" if base == this else "changed"
    delta = this - base  # type: ignore[operator]
    if delta == 0:
        return ""
    # bold when the change shows at the table's four decimals; float noise stays plain
    return f"**{delta:+.4f}**" if abs(delta) >= 5e-5 else f"{delta:+.1e}"


def metric_order(metric: Change) -> tuple[int, str]:
    """The model's test metrics first, then the baselines it is measured against."""
    return (metric.name.startswith("baseline_"), metric.name)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


def stage_lines(outcomes: Mapping[str, str] | None) -> list[str]:
    if outcomes is None:
        return ["Stages: not recorded (pass `--repro-log` with the output of `dvc repro`)."]
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    order = (stages.FAILED, stages.RAN, stages.RESTORED, stages.PULLED, stages.UNCHANGED)
    summary = ", ".join(f"{counts[o]} {o}" for o in order if o in counts)
    columns: list[str] = []
    rows: dict[str, dict[str, str]] = {}
    for stage, outcome in outcomes.items():
        name, item = stages.split(stage)
        columns += [] if name in columns else [name]
        shown = f"**{outcome}**" if outcome in (stages.RAN, stages.FAILED) else outcome
        rows.setdefault(item, {})[name] = shown
    body = [[f"`{item}`", *(cells.get(c, "") for c in columns)] for item, cells in rows.items()]
    return [f"**Stages** (`dvc repro`): {summary}.", "", *table(["", *columns], body)]


def task_lines(task: str, section: TaskSection) -> list[str]:
    lines = [f"### {task}", ""]
    if section.metrics:
        rows = [[m.name, number(m.base), number(m.this), change(m.base, m.this)]
                for m in sorted(section.metrics, key=metric_order)]
        lines += [*table(["test metric", "base", "this", "change"], rows), ""]
    if section.params:
        rows = [[f"`{p.name}`", number(p.base), number(p.this)] for p in section.params]
        lines += ["Params that differ:", "", *table(["param", "base", "this"], rows), ""]
    else:
        lines += ["Params: same as the base.", ""]
    if section.figures:
        def image(link: str | None, alt: str) -> str:
            return f"![{alt}]({link})" if link else "(none)"

        rows = [[name, image(base, f"{name}, base"), image(this, f"{name}, this")]
                for name, base, this in section.figures]
        lines += [*table(["figure", "base", "this"], rows), ""]
    if section.unchanged_figures:
        lines += [f"Figures unchanged: {section.unchanged_figures} (byte-identical to the "
                  "base's).", ""]
    return lines


def render(base: str, base_commit: str, this_commit: str, outcomes: Mapping[str, str] | None,
           tasks: Mapping[str, TaskSection]) -> str:
    lines = [TITLE, "",
             f"Base `{base}` ({base_commit[:7]}) against this revision ({this_commit[:7]}, "
             "workspace after `dvc repro`).", "", *stage_lines(outcomes), ""]
    for task, section in tasks.items():
        lines += task_lines(task, section)
    return "\n".join(lines).rstrip() + "\n"
