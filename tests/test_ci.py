"""The CI definitions users copy: valid against GitHub's and GitLab's own schemas (bundled by
check-jsonschema, so offline, in-process), and thin: every command they run is a Makefile
target, the same targets .ci/run and these tests exercise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from check_jsonschema import main as check_jsonschema
from click.testing import CliRunner

from conftest import ROOT

GITHUB = ROOT / ".github" / "workflows" / "pipeline.yml"
GITLAB = ROOT / ".gitlab-ci.yml"
SCHEMAS = {GITHUB: "vendor.github-workflows", GITLAB: "vendor.gitlab-ci"}


def validate(path: Path, schema: str) -> tuple[int, str]:
    done = CliRunner().invoke(check_jsonschema, ["--builtin-schema", schema, str(path)])
    return done.exit_code, done.output


@pytest.mark.parametrize("path", list(SCHEMAS), ids=lambda p: p.name)
def test_ci_definition_validates_against_its_platforms_schema(path: Path) -> None:
    code, output = validate(path, SCHEMAS[path])
    assert code == 0, output
    assert "ok -- validation done" in output


def test_the_schema_check_refuses_a_broken_workflow(tmp_path: Path) -> None:
    workflow = yaml.safe_load(GITHUB.read_text())
    del workflow["jobs"]["pipeline"]["runs-on"]  # a job with nowhere to run
    workflow["jobs"]["pipeline"]["timeout-minutes"] = "an hour"
    broken = tmp_path / "pipeline.yml"
    broken.write_text(yaml.safe_dump(workflow))
    code, output = validate(broken, SCHEMAS[GITHUB])
    assert code == 1
    assert "Schema validation errors" in output


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"(?m)^([A-Za-z][\w.-]*):(?!=)", text))


def make_calls(text: str) -> list[str]:
    return re.findall(r"\bmake ([a-z][\w-]*)", text)


def test_workflows_run_only_makefile_targets() -> None:
    targets = make_targets()
    workflow = yaml.safe_load(GITHUB.read_text())
    steps = workflow["jobs"]["pipeline"]["steps"]
    runs = [step["run"] for step in steps if "run" in step]
    called = [call for run in runs for call in make_calls(run)]
    assert {"setup", "ci-pipeline", "test", "report", "ci-push", "registry"} <= set(called)
    for run in runs:  # anything else is the comment, which needs the CI platform
        assert make_calls(run) or run.startswith("cml comment update"), run
    gitlab = make_calls(GITLAB.read_text())
    assert set(called) == set(gitlab)
    assert set(called) <= targets, set(called) - targets
    # triggers: every push to the default branch and every pull request
    assert set(workflow[True]) == {"push", "pull_request"}  # YAML 1.1 reads `on` as True


def test_project_ci_runs_the_report_target_the_workflows_run() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "report" in make_calls(script) and "pipeline" in make_calls(script)
    assert "REPRO_LOG=report/repro.log" in script
    # the report's directory is ignored: `make pipeline` insists on a clean `git status`
    assert "/report/" in (ROOT / ".gitignore").read_text().splitlines()
