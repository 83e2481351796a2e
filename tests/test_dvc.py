"""DVC: remotes that round-trip bytes, lineage from dvc.lock into MLflow, and damaged data
that DVC notices. Each test works in a throw-away git+DVC repo, running `dvc` (slow)."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import BIN, ROOT, all_runs, dvc, free_port, run_cli


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git("init", "-q", cwd=root)
    git("config", "user.email", "t@example.org", cwd=root)
    git("config", "user.name", "test", cwd=root)
    dvc("init", "-q", cwd=root)
    git("commit", "-qm", "init", cwd=root)
    return root


def manifest_hashes_match(directory: Path) -> bool:
    manifest = json.loads((directory / "manifest.json").read_text())
    return all(
        hashlib.sha256((directory / name).read_bytes()).hexdigest() == entry["sha256"]
        for name, entry in manifest["files"].items()
    )


@pytest.mark.slow
def test_local_remote_round_trip_restores_identical_bytes(repo: Path, data_dir: Path,
                                                           tmp_path: Path) -> None:
    shutil.copytree(data_dir / "market", repo / "data" / "market")
    dvc("add", "data/market", cwd=repo)
    dvc("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=repo)
    dvc("push", cwd=repo)
    shutil.rmtree(repo / "data" / "market")
    shutil.rmtree(repo / ".dvc" / "cache")
    dvc("pull", cwd=repo)
    assert manifest_hashes_match(repo / "data" / "market")
    assert json.loads(dvc("status", "--json", cwd=repo).stdout) == {}


@pytest.fixture()
def s3_server():
    port = free_port()
    server = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    yield endpoint
    server.terminate()
    server.wait(timeout=10)


@pytest.mark.slow
def test_s3_compatible_remote_round_trip(repo: Path, data_dir: Path, s3_server: str) -> None:
    import boto3

    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
             "AWS_DEFAULT_REGION": "us-east-1"}
    boto3.client("s3", endpoint_url=s3_server, aws_access_key_id="testing",
                 aws_secret_access_key="testing", region_name="us-east-1"
                 ).create_bucket(Bucket="dvc-store")
    shutil.copytree(data_dir / "digits", repo / "data" / "digits")
    dvc("add", "data/digits", cwd=repo)
    dvc("remote", "add", "-d", "s3", "s3://dvc-store/modelyard", cwd=repo)
    dvc("remote", "modify", "s3", "endpointurl", s3_server, cwd=repo)
    dvc("push", cwd=repo, env=creds)
    shutil.rmtree(repo / "data" / "digits")
    shutil.rmtree(repo / ".dvc" / "cache")
    dvc("pull", cwd=repo, env=creds)
    assert manifest_hashes_match(repo / "data" / "digits")


@pytest.mark.slow
def test_missing_remote_or_cache_object_fails_clearly(repo: Path, data_dir: Path,
                                                      tmp_path: Path) -> None:
    shutil.copytree(data_dir / "market", repo / "data" / "market")
    dvc("add", "data/market", cwd=repo)
    dvc("remote", "add", "-d", "gone", str(tmp_path / "never-created"), cwd=repo)
    shutil.rmtree(repo / "data" / "market")
    shutil.rmtree(repo / ".dvc" / "cache")
    for command in (["pull"], ["checkout"]):
        result = dvc(*command, cwd=repo, check=False)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert "ERROR" in result.stderr and "data/market" in result.stdout + result.stderr


@pytest.mark.slow
def test_user_dataset_versioned_with_dvc_add_trains_with_its_version(
    repo: Path, data_dir: Path, tmp_path: Path, tracking
) -> None:
    mine = repo / "mine"
    mine.mkdir()
    for split in ("train", "val", "test"):
        shutil.copy(data_dir / "market" / f"{split}.csv", mine / f"{split}.csv")
    dvc("add", "mine", cwd=repo)
    md5 = yaml.safe_load((repo / "mine.dvc").read_text())["outs"][0]["md5"]
    result = run_cli("train", "experiment=market_regressor", "debug=fast", f"data.path={mine}",
                     f"paths.output_root={tmp_path}/out", env=tracking)
    assert result.returncode == 0, result.stderr[-2000:]
    [run] = all_runs(tracking)
    assert run.data.tags["dvc.data_md5"] == md5


PIPELINE = """\
stages:
  prepare:
    cmd: modelyard prepare market out_dir=data
    outs: [data/market]
  train:
    cmd: modelyard train experiment=market_regressor pipeline=dvc_stage debug=fast
      model.lr=${tasks.market_regressor.model.lr}
    deps: [data/market]
    params: [tasks.market_regressor]
    outs: [pipeline/market_regressor/train/model.ckpt]
"""


@pytest.mark.slow
def test_pipeline_lineage_experiments_and_damaged_data(repo: Path, tmp_path: Path) -> None:
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    shutil.copytree(ROOT / "conf", repo / "conf")  # a modelyard project: commands run in it
    (repo / "dvc.yaml").write_text(PIPELINE)
    (repo / "params.yaml").write_text("tasks:\n  market_regressor:\n    model: {lr: 0.05}\n")
    (repo / ".gitignore").write_text("/pipeline/\n")
    dvc("repro", cwd=repo, env=env)
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    data_md5 = lock["stages"]["prepare"]["outs"][0]["md5"]
    [run] = all_runs(env)
    assert run.data.tags["dvc.data_md5"] == data_md5

    # an experiment re-runs only the stage whose params changed, and names the MLflow run
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "pipeline", cwd=repo)
    exp = dvc("exp", "run", "-n", "lower-lr", "-S", "tasks.market_regressor.model.lr=0.01",
              cwd=repo, env=env)
    assert "Running stage 'prepare'" not in exp.stdout
    assert "Running stage 'train'" in exp.stdout
    runs = {r.data.tags.get("dvc.exp_name"): r for r in all_runs(env)}
    assert runs["lower-lr"].data.params["model.lr"] == "0.01"

    # a hand-edited data file: dvc status names it, dvc repro rebuilds it intact
    train_csv = repo / "data" / "market" / "train.csv"
    train_csv.write_bytes(train_csv.read_bytes()[:5000])
    assert "data/market" in dvc("status", cwd=repo).stdout
    dvc("repro", cwd=repo, env=env)
    assert manifest_hashes_match(repo / "data" / "market")
    assert json.loads(dvc("status", "--json", cwd=repo).stdout) == {}
