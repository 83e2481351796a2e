"""Bad input: one clear line on stderr, a non-zero exit, and no MLflow run left RUNNING."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import MODELYARD, all_runs, run_cli


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode != 0, result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("modelyard: error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["experiment=mnist_cn"], ["mnist_cn", "mnist_cnn"]),  # names the options
        (["experiment=mnist_cnn", "model.lrr=0.1"], ["lrr"]),
        (["experiment=mnist_cnn", "model.lr=fast"], ["model.lr", "number"]),
        (["experiment=mnist_cnn", "trainer.max_epochs=1.5"], ["trainer.max_epochs"]),
        ([], ["experiment"]),
    ],
)
def test_config_mistakes(args: list[str], fragments: list[str], tracking) -> None:
    result = run_cli("train", *args, env=tracking)
    assert_one_line_error(result, *fragments)
    assert all_runs(tracking) == []


def test_unknown_command_and_dataset() -> None:
    assert_one_line_error(run_cli("trian"), "trian")
    assert_one_line_error(run_cli("prepare", "cifar"), "cifar")


def test_missing_data_directory(train, tmp_path: Path, tracking) -> None:
    result = train("experiment=mnist_cnn", "debug=fast", f"data.path={tmp_path}/nowhere")
    assert_one_line_error(result, "nowhere", "modelyard prepare digits")
    assert all_runs(tracking) == []


@pytest.fixture()
def digits_copy(data_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "digits"
    shutil.copytree(data_dir / "digits", copy)
    return copy


def test_corrupt_data_file_is_caught_by_its_hash(train, digits_copy: Path, tracking) -> None:
    target = digits_copy / "train.npz"
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    target.write_bytes(bytes(raw))
    result = train("experiment=mnist_cnn", "debug=fast", f"data.path={digits_copy}")
    assert_one_line_error(result, "train.npz", "sha256")
    assert all_runs(tracking) == []


def test_truncated_file_without_manifest(train, digits_copy: Path, tracking) -> None:
    (digits_copy / "manifest.json").unlink()
    target = digits_copy / "val.npz"
    target.write_bytes(target.read_bytes()[:1000])
    result = train("experiment=mnist_cnn", "debug=fast", f"data.path={digits_copy}")
    assert_one_line_error(result, "val.npz", "unreadable")
    assert all_runs(tracking) == []


def test_missing_split_file(train, digits_copy: Path, tracking) -> None:
    (digits_copy / "manifest.json").unlink()
    (digits_copy / "test.npz").unlink()
    result = train("experiment=mnist_cnn", "debug=fast", f"data.path={digits_copy}")
    assert_one_line_error(result, "test.npz", "missing")


@pytest.fixture()
def user_market(data_dir: Path, tmp_path: Path) -> Path:
    """The prepared market splits as a user would bring them: plain CSVs, no manifest."""
    user = tmp_path / "user_market"
    user.mkdir()
    for split in ("train", "val", "test"):
        shutil.copy(data_dir / "market" / f"{split}.csv", user / f"{split}.csv")
    return user


def test_user_csv_missing_a_configured_column(train, user_market: Path, tracking) -> None:
    frame = pd.read_csv(user_market / "val.csv").drop(columns=["fertility"])
    frame.to_csv(user_market / "val.csv", index=False)
    result = train("experiment=market_regressor", "debug=fast", f"data.path={user_market}")
    assert_one_line_error(result, "val.csv", "fertility")
    assert all_runs(tracking) == []


def test_nan_in_features(train, user_market: Path, tracking) -> None:
    frame = pd.read_csv(user_market / "train.csv")
    frame.loc[3, "life_expectancy"] = float("nan")
    frame.to_csv(user_market / "train.csv", index=False)
    result = train("experiment=market_regressor", "debug=fast", f"data.path={user_market}")
    assert_one_line_error(result, "train.csv", "NaN", "life_expectancy")
    assert all_runs(tracking) == []


def test_evaluate_without_a_readable_checkpoint(data_dir: Path, tmp_path: Path, tracking) -> None:
    args = ["evaluate", "experiment=mnist_cnn", f"paths.data_dir={data_dir}",
            f"paths.output_root={tmp_path}/out"]
    assert_one_line_error(run_cli(*args, env=tracking), "ckpt_path")
    missing = run_cli(*args, f"ckpt_path={tmp_path}/none.ckpt", env=tracking)
    assert_one_line_error(missing, "none.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    assert_one_line_error(run_cli(*args, f"ckpt_path={junk}", env=tracking), "junk.ckpt")
    assert all_runs(tracking) == []


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("http://user:secret@127.0.0.1:9", "unreachable"),  # nothing listens on port 9
        ("sqlite:////dev/null/sub/m.db", "cannot open MLflow tracking store"),
    ],
)
def test_unusable_tracking_store(train, uri: str, fragment: str) -> None:
    import time

    start = time.perf_counter()
    result = train("experiment=market_regressor", "debug=fast",
                   env={"MLFLOW_TRACKING_URI": uri})
    assert_one_line_error(result, fragment)
    assert "secret" not in result.stderr
    assert time.perf_counter() - start < 10  # seconds, not minutes of client retries


def test_junk_async_logging_buffer_from_the_environment(train, tracking) -> None:
    # MLflow would only parse it in its logging thread, which then dies and leaves every flush
    # waiting forever; it is checked before any run starts instead.
    result = train("experiment=market_regressor", "debug=fast",
                   env={"MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS": "0.5"})
    assert_one_line_error(result, "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS", "0.5")
    assert all_runs(tracking) == []


def test_interrupted_training_is_not_left_running(data_dir: Path, tmp_path: Path, tracking) -> None:
    """Ctrl-C in the middle of fitting: the run is closed as failed, not left RUNNING."""
    import signal
    import subprocess
    import time

    process = subprocess.Popen(
        [MODELYARD, "train", "experiment=mnist_cnn", f"paths.data_dir={data_dir}",
         f"paths.output_root={tmp_path}/outputs"],
        env={**os.environ, **tracking},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(r.data.metrics for r in all_runs(tracking)):
        time.sleep(1)  # wait for the first epoch's metrics: fitting is under way
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    [run] = all_runs(tracking)
    assert run.info.status in ("FAILED", "KILLED"), stderr[-2000:]


def test_registry_commands_on_missing_things(tracking, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("predict", "mnist-cnn", f"{tmp_path}/no.png", env=tracking),
                          "no.png")
    text = tmp_path / "r.txt"
    text.write_text("fine\n")
    assert_one_line_error(run_cli("predict", "nope", str(text), env=tracking), "nope")
    assert_one_line_error(run_cli("models", "promote", "nope", env=tracking), "nope")
    assert_one_line_error(run_cli("models", "rollback", "nope", env=tracking), "nope")
    assert_one_line_error(run_cli("models", "frobnicate", env=tracking), "usage")
    assert_one_line_error(run_cli("models", "reproduce", "nope/1", env=tracking), "nope/1")
    assert_one_line_error(run_cli("models", "reproduce", "nope", env=tracking), "<name>/<version>")
