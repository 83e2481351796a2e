"""What a person sees: run names, the markdown MLflow shows on runs and versions, DVC's offline
plot page; in the slow tier, the real MLflow UI and `dvc plots show` in headless Chromium."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from modelyard.config import compose
from modelyard.tracking import describe, naming

from conftest import BIN, ROOT, cached_client, dvc, run_cli

sys.path.insert(0, str(ROOT / "tools"))
import vega_template  # noqa: E402

TEMPLATE = ROOT / ".dvc" / "plots" / "offline.html"


# -- run names and descriptions (in-process) ------------------------------------------------


def test_a_run_is_named_after_its_task_what_the_job_changed_and_a_short_id() -> None:
    overrides = ["experiment=market_regressor", "debug=fast", "model.lr=0.01", "seed=42",
                 "paths.output_root=/tmp/x", "logger.tracking_uri=sqlite:///m.db",
                 "data.path=/home/me/countries", "trainer.max_epochs=3"]
    cfg = compose("train", overrides)
    defaults = compose("train", ["experiment=market_regressor", "debug=fast"])
    changed = naming.changes(overrides, cfg, defaults)
    # seed 42 is the default; paths and the store say where, not what
    assert changed == ["debug=fast", "lr=0.01", "data=countries", "max_epochs=3"]
    assert naming.run_name("market_regressor", changed, "3fa2c1") == \
        "market_regressor debug=fast lr=0.01 data=countries max_epochs=3 · 3fa2c1"
    assert naming.run_name("mnist_cnn", [], "3fa2c1", "evaluate") == "mnist_cnn evaluate · 3fa2c1"
    long = naming.run_name("t", [f"key{i}=value{i}" for i in range(20)], "abcdef")
    assert long.endswith("… · abcdef") and len(long) < naming.MAX_CHANGES + 20
    assert naming.short_id("outputs/mnist_cnn/2026-11-25_16-01-03_19f4d1") == "19f4d1"
    assert re.fullmatch(r"[0-9a-f]{6}", naming.short_id("pipeline/mnist_cnn/train"))


LINEAGE = {"git.sha": "d9eb4f44267a3cca965cef29cc4f1f4bc37a1b2c", "git.dirty": "false",
           "data.path": "data/market", "data.manifest_sha256": "2b1b7427133cbaa6132ce7889e",
           "dvc.data_md5": "1321f522da0aa8c3053ff05f03fdfb23.dir", "command": "modelyard train",
           "config_sha256": "8a4bfe92dfcf133cd08fb9a5b04"}


def test_a_version_description_sets_test_metrics_beside_the_baseline_s() -> None:
    text = describe.version_description(
        "sentiment_lstm", "sentiment_lstm lr=0.02 · fadb53", "1", "ee4e913b", LINEAGE,
        {"test_acc": 0.7935, "baseline_nbsvm_test_acc": 0.7912, "baseline_tfidf_lr_test_acc":
         0.7775, "test_loss": 0.46, "val_acc": 0.5})
    assert "| test metric | this model | baseline: nbsvm | baseline: tfidf lr |" in text
    assert "| acc | 0.7935 | 0.7912 | 0.7775 |" in text and "| loss | 0.4600 | – | – |" in text
    assert "val_acc" not in text
    older = describe.metrics_table({"test_mse": 0.464, "baseline_test_mse": 0.4658})
    assert older[-1] == "| mse | 0.4640 | 0.4658 |"
    assert "[sentiment_lstm lr=0.02 · fadb53](#/experiments/1/runs/ee4e913b)" in text
    assert "(#/experiments/1/runs/ee4e913b/artifactPath/config.yaml)" in text
    assert "`data/market`" in text and "`d9eb4f44267a…` (clean)" in text
    assert "DVC md5 `1321f522da0a…`" in text


def test_the_gate_s_decision_reads_from_the_version_s_tags() -> None:
    tags = {"promotion.decision": "rejected", "promotion.metric": "accuracy_score",
            "promotion.challenger_score": "0.91", "promotion.champion_version": "2",
            "promotion.champion_score": "0.95", "promotion.reason": "below the champion",
            "promotion.time": "2026-11-25T16:05:07+00:00"}
    text = describe.decision_section(tags, "abc123", "4")
    assert "**REJECTED**" in text and "champion v2 0.95" in text
    assert "this version 0.91" in text and "below the champion" in text
    assert "[promotion run](#/experiments/4/runs/abc123)" in text


# -- the offline template for `dvc plots show` (in-process) ---------------------------------


def test_dvc_plots_use_the_committed_offline_template() -> None:
    config = (ROOT / ".dvc" / "config").read_text()
    assert re.search(r"^\[plots\]\s*\n\s*html_template = plots/offline.html", config, re.M)
    page = TEMPLATE.read_text()
    assert "{plot_divs}" in page and "{scripts}" not in page  # no room for DVC's CDN tags
    for name in ("vega", "vega-lite", "vega-embed"):
        assert re.search(rf"<script>/\* {name} \d+\.\d+\.\d+ \(npm\)", page)
    assert not re.search(r"<(script|link)[^>]+(src|href)=[\"']?https?:", page)
    scatter = json.loads((ROOT / ".dvc" / "plots" / "scatter_fitted.json").read_text())
    assert scatter["encoding"]["x"]["scale"] == {"zero": False}


def tarball(tmp: Path, name: str, build: str) -> Path:
    path = tmp / f"{name}.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for member, text in (("package.json", json.dumps({"name": name, "version": "1.2.3",
                                                           "license": "BSD-3-Clause"})),
                             (vega_template.BUILDS[name], build)):
            data = text.encode()
            info = tarfile.TarInfo(f"package/{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_the_template_builder_inlines_the_three_builds_and_refuses_a_broken_set(
        tmp_path: Path) -> None:
    archives = [tarball(tmp_path, name, f"var {name.replace('-', '_')} = 1;")
                for name in vega_template.BUILDS]
    page = vega_template.build(archives)
    assert page.index("var vega = 1") < page.index("var vega_lite = 1") \
        < page.index("var vega_embed = 1")
    assert "License: BSD-3-Clause" in page and "{plot_divs}" in page
    with pytest.raises(SystemExit, match="missing package.*vega-embed"):
        vega_template.build(archives[:2])
    broken = tarball(tmp_path, "vega-embed", "document.write('</script>')")
    with pytest.raises(SystemExit, match="</script"):
        vega_template.build([*archives[:2], broken])


# -- real renderings (slow) ------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium; "
                             ".ci/run installs it)")


@pytest.mark.slow
@needs_chromium
def test_mlflow_ui_shows_run_and_version_with_datasets_lineage_and_decision(
        train, tracking: dict[str, str], tmp_path: Path) -> None:
    trained = train("experiment=market_regressor", "debug=fast", "model.lr=0.02")
    assert trained.returncode == 0, trained.stderr[-2000:]
    promoted = run_cli("models", "promote", "market-regressor", env=tracking)
    assert promoted.returncode == 3, promoted.stderr[-2000:]  # debug=fast misses the floor

    client = cached_client(tracking["MLFLOW_TRACKING_URI"])
    version = client.get_model_version("market-regressor", "1")
    run = client.get_run(version.run_id)
    assert re.fullmatch(r"market_regressor debug=fast lr=0\.02 · [0-9a-f]{6}", run.info.run_name)
    assert version.tags["config"] == f"runs:/{run.info.run_id}/config.yaml"
    scoring = client.search_runs([run.info.experiment_id], "tags.`modelyard.job` = 'score'")
    assert [(r.data.tags["modelyard.version"], r.data.tags["modelyard.role"])
            for r in scoring] == [("1", "challenger")]
    assert scoring[0].data.tags["mlflow.parentRunId"] == version.tags["promotion.run_id"]

    out = tmp_path / "shots"
    shots = subprocess.run([str(BIN / "python"), str(ROOT / "tools" / "ui_screenshots.py"),
                            "--tracking-uri", tracking["MLFLOW_TRACKING_URI"], "-o", str(out)],
                           capture_output=True, text=True, timeout=400)
    assert shots.returncode == 0, shots.stdout + shots.stderr[-3000:]
    for page in ("run", "version"):
        assert (out / f"market-regressor-v1-{page}.png").stat().st_size > 50_000
    version_page = (out / "market-regressor-v1-version.txt").read_text()
    assert "REJECTED" in version_page and "baseline: least squares" in version_page


@pytest.mark.slow
def test_dvc_plots_show_needs_no_cdn(tmp_path: Path) -> None:
    """A project with this repository's DVC plot settings: the page it writes loads nothing
    from the network, and (with chromium, DNS switched off) vega draws every chart."""
    (tmp_path / ".dvc").mkdir()
    shutil.copytree(ROOT / ".dvc" / "plots", tmp_path / ".dvc" / "plots")
    shutil.copy(ROOT / ".dvc" / "config", tmp_path / ".dvc" / "config")
    (tmp_path / "history.csv").write_text("epoch,train_loss,val_loss\n1,2.0,2.5\n2,1.0,1.5\n")
    (tmp_path / "predictions.csv").write_text("actual,predicted\n20.5,21.0\n24.0,23.1\n")
    (tmp_path / "dvc.yaml").write_text(
        "plots:\n"
        "  - loss:\n      x: epoch\n      y:\n        history.csv: [train_loss, val_loss]\n"
        "  - predictions.csv:\n      template: scatter_fitted\n      x: actual\n"
        "      y: predicted\n")
    dvc("plots", "show", "-o", "shown", cwd=tmp_path)
    page = (tmp_path / "shown" / "index.html").read_text()
    assert not re.search(r"<(script|link)[^>]+(src|href)=[\"']?https?:", page)
    assert "cdn.jsdelivr" not in page and page.count("vegaEmbed(") == 2
    if CHROMIUM is None:
        pytest.skip("rendered check needs chromium (apt-get install chromium)")
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--host-resolver-rules="
         "MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=10000", "--dump-dom", (tmp_path / "shown" / "index.html")
         .as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert dom.count('class="marks"') >= 2  # vega's canvas, one a chart
