"""`modelyard models reproduce` rebuilds a version from its lineage alone: a clean clone of this
repository trains, then the version is retrained from its commit, DVC data and overrides."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import client_for, dvc, run_cli

NAME = "market-regressor"


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture()
def clone(tmp_path: Path) -> Path:
    """A clean clone of the committed code, with the market data built by its DVC stage."""
    import modelyard

    target = tmp_path / "clone"
    git("clone", "--quiet", str(Path(modelyard.__file__).parents[2]), str(target), cwd=tmp_path)
    return target


@pytest.mark.slow
def test_reproduce_matches_flags_a_changed_dataset_and_refuses_dirty_code(
    clone: Path, tmp_path: Path, tracking
) -> None:
    env = {**tracking, "PYTHONPATH": str(clone / "src")}

    def modelyard(*args: str) -> subprocess.CompletedProcess:
        return run_cli(*args, env=env, cwd=clone)

    dvc("repro", "prepare@market", cwd=clone, env=env)
    assert modelyard("train", "experiment=market_regressor", "debug=fast").returncode == 0

    same = modelyard("models", "reproduce", f"{NAME}/1")
    assert same.returncode == 0, same.stdout[-3000:] + same.stderr[-2000:]
    assert "reproduced: largest metric difference 0 " in same.stdout
    assert "DIFFERENT" not in same.stdout
    version = client_for(tracking).get_model_version(NAME, "1")
    assert float(version.tags["reproduce.max_abs_diff"]) == 0.0

    # data outside the project, re-prepared with another seed after training: caught
    outside = tmp_path / "own-data"
    assert modelyard("prepare", "market", f"out_dir={outside}").returncode == 0
    trained = modelyard("train", "experiment=market_regressor", "debug=fast",
                        f"paths.data_dir={outside}", "seed=7")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert modelyard("prepare", "market", f"out_dir={outside}", "seed=3").returncode == 0
    changed = modelyard("models", "reproduce", f"{NAME}/2")
    assert changed.returncode == 4, changed.stdout[-3000:] + changed.stderr[-2000:]
    assert "data.manifest_sha256" in changed.stdout and "DIFFERENT" in changed.stdout

    # a README edit is not a source of the model; a config edit is
    (clone / "README.md").write_text("an uncommitted edit\n")
    assert modelyard("train", "experiment=market_regressor", "debug=fast", "seed=2").returncode == 0
    assert client_for(tracking).get_model_version(NAME, "3").tags["git.dirty"] == "false"
    with (clone / "conf" / "model" / "regressor.yaml").open("a") as config:
        config.write("# an uncommitted edit\n")
    assert modelyard("train", "experiment=market_regressor", "debug=fast", "seed=1").returncode == 0
    dirty = modelyard("models", "reproduce", f"{NAME}/4")
    assert dirty.returncode == 2 and "uncommitted changes" in dirty.stderr, dirty.stderr
