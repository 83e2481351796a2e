"""Bad input: one clear line on stderr, a non-zero exit, and no MLflow run left RUNNING.

In-process, the checks themselves: the errors modelyard raises for a user's mistake
(`ModelyardError`: one line, naming what is wrong) before any run exists. Through the
`modelyard` command (slow), what a user sees: exactly one `modelyard: error:` line, exit 2.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
from hydra.utils import get_class

from modelyard import cli
from modelyard.config import check_overrides, compose
from modelyard.errors import ConfigError, DataError, ModelyardError, StoreError
from modelyard.tracking import store as tracking_store
from modelyard.training.export import load_model
from modelyard.training.train import train

from conftest import (
    MODELYARD,
    all_runs,
    run_cli,
    runs_in,
    train_overrides,
    working_directory,
)


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode != 0, result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("modelyard: error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def assert_one_line(error: BaseException, *fragments: str) -> None:
    message = str(error)
    assert message and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


CONFIG_MISTAKES = [
    (["experiment=mnist_cn"], ["mnist_cn", "mnist_cnn"]),  # names the options
    (["experiment=mnist_cnn", "model.lrr=0.1"], ["lrr"]),
    (["experiment=mnist_cnn", "model.lr=fast"], ["model.lr", "Float"]),  # schema-typed
    (["experiment=mnist_cnn", "trainer.max_epochs=1.5"], ["trainer.max_epochs"]),
    ([], ["experiment"]),
]
UNUSABLE_STORES = [
    ("http://user:secret@127.0.0.1:9", "unreachable"),  # nothing listens on port 9
    ("sqlite:////dev/null/sub/m.db", "no such directory"),
]


# -- in-process ----------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "fragments"), CONFIG_MISTAKES)
def test_config_mistakes_are_one_line_errors(args: list[str], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        check_overrides("train", args)
    assert_one_line(caught.value, *fragments)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [(["trian"], "trian"), (["prepare", "cifar"], "cifar"),
     (["models", "frobnicate"], "frobnicate"), (["models"], "<action>")],
)
def test_command_line_mistakes_exit_2_with_one_line(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("modelyard: error:") and fragment in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


@pytest.fixture()
def train_fails(project: Path, data_dir: Path, tmp_path: Path, store: str):
    """`train(cfg)` of a debug run that must fail with a user error before any MLflow run."""

    def _fails(task: str, *overrides: str) -> ModelyardError:
        with working_directory(project), pytest.raises(ModelyardError) as caught:
            train(compose("train", train_overrides(task, tmp_path / "job",
                                                   f"paths.data_dir={data_dir}", *overrides,
                                                   tracking_uri=store)))
        assert runs_in(store) == []
        return caught.value

    return _fails


def test_missing_data_directory_is_a_data_error(train_fails, tmp_path: Path) -> None:
    error = train_fails("mnist_cnn", f"data.path={tmp_path}/nowhere")
    assert isinstance(error, DataError)
    assert_one_line(error, "nowhere", "modelyard prepare digits")


@pytest.fixture()
def digits_copy(data_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "digits"
    shutil.copytree(data_dir / "digits", copy)
    return copy


def test_corrupt_data_file_is_caught_by_its_hash(train_fails, digits_copy: Path) -> None:
    target = digits_copy / "train.npz"
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    target.write_bytes(bytes(raw))
    assert_one_line(train_fails("mnist_cnn", f"data.path={digits_copy}"), "train.npz", "sha256")


def test_truncated_file_without_manifest(train_fails, digits_copy: Path) -> None:
    (digits_copy / "manifest.json").unlink()
    target = digits_copy / "val.npz"
    target.write_bytes(target.read_bytes()[:1000])
    assert_one_line(train_fails("mnist_cnn", f"data.path={digits_copy}"), "val.npz",
                    "unreadable")


def test_missing_split_file(train_fails, digits_copy: Path) -> None:
    (digits_copy / "manifest.json").unlink()
    (digits_copy / "test.npz").unlink()
    assert_one_line(train_fails("mnist_cnn", f"data.path={digits_copy}"), "test.npz", "missing")


@pytest.fixture()
def user_market(data_dir: Path, tmp_path: Path) -> Path:
    """The prepared market splits as a user would bring them: plain CSVs, no manifest."""
    user = tmp_path / "user_market"
    user.mkdir()
    for split in ("train", "val", "test"):
        shutil.copy(data_dir / "market" / f"{split}.csv", user / f"{split}.csv")
    return user


def test_user_csv_missing_a_configured_column(train_fails, user_market: Path) -> None:
    frame = pd.read_csv(user_market / "val.csv").drop(columns=["fertility"])
    frame.to_csv(user_market / "val.csv", index=False)
    assert_one_line(train_fails("market_regressor", f"data.path={user_market}"),
                    "val.csv", "fertility")


def test_nan_in_features(train_fails, user_market: Path) -> None:
    frame = pd.read_csv(user_market / "train.csv")
    frame.loc[3, "life_expectancy"] = float("nan")
    frame.to_csv(user_market / "train.csv", index=False)
    assert_one_line(train_fails("market_regressor", f"data.path={user_market}"),
                    "train.csv", "NaN", "life_expectancy")


def test_junk_async_logging_buffer_from_the_environment(
    train_fails, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLflow would only parse it in its logging thread, which then dies and leaves every flush
    # waiting forever; it is checked before any run starts instead.
    monkeypatch.setenv("MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS", "0.5")
    assert_one_line(train_fails("market_regressor"), "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS",
                    "0.5")


def test_evaluate_needs_a_readable_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        check_overrides("evaluate", ["experiment=mnist_cnn"])
    assert_one_line(caught.value, "ckpt_path")
    cfg = check_overrides("evaluate", ["experiment=mnist_cnn", f"ckpt_path={tmp_path}/none.ckpt"])
    model_class = get_class(cfg.model._target_)
    with pytest.raises(DataError) as caught:
        load_model(model_class, Path(cfg.ckpt_path))
    assert_one_line(caught.value, "none.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError) as caught:
        load_model(model_class, junk)
    assert_one_line(caught.value, "junk.ckpt")


@pytest.mark.parametrize(("uri", "fragment"), UNUSABLE_STORES)
def test_unusable_tracking_store_is_refused_without_its_credentials(uri: str,
                                                                   fragment: str) -> None:
    with pytest.raises(StoreError) as caught:
        tracking_store.check(uri)
    assert_one_line(caught.value, fragment, "MLflow tracking")
    assert "secret" not in str(caught.value)


class FailsInSecondEpoch(L.Callback):
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 1:
            raise RuntimeError("broken in epoch 2")


def test_a_failure_during_fitting_ends_the_run_failed(project: Path, tmp_path: Path,
                                                      store: str) -> None:
    """The run is closed as failed, never left RUNNING (a crash in the middle of fitting)."""
    with working_directory(project), pytest.raises(RuntimeError, match="broken in epoch 2"):
        cfg = compose("train", train_overrides("market_regressor", tmp_path / "job",
                                               "trainer.max_epochs=3", tracking_uri=store))
        train(cfg, extra_callbacks=[FailsInSecondEpoch()])
    [run] = runs_in(store)
    assert run.info.status == "FAILED"
    assert run.data.metrics  # fitting was under way: the first epoch was recorded


def test_registry_functions_on_missing_things(store: str, tmp_path: Path,
                                              fluent_mlflow) -> None:
    from modelyard.registry.promotion import promote, rollback
    from modelyard.registry.reproduce import find_version
    from modelyard.registry.serving import read_inputs

    with pytest.raises(DataError) as caught:
        read_inputs(f"{tmp_path}/no.png")
    assert_one_line(caught.value, "no.png")
    client = tracking_store.client(store)
    for action in (promote, rollback):
        with pytest.raises(ModelyardError) as caught:
            action(client, "nope")
        assert_one_line(caught.value, "nope")
    assert client.search_registered_models() == []  # the promotion lock was let go
    with pytest.raises(ModelyardError) as caught:
        find_version(client, "nope/1")
    assert_one_line(caught.value, "nope/1")
    with pytest.raises(ModelyardError) as caught:
        find_version(client, "nope")
    assert_one_line(caught.value, "<name>/<version>")


# -- the `modelyard` command (subprocesses) ------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("args", "fragments"), CONFIG_MISTAKES)
def test_config_mistakes(args: list[str], fragments: list[str], tracking) -> None:
    result = run_cli("train", *args, env=tracking)
    assert_one_line_error(result, *fragments)
    assert all_runs(tracking) == []


@pytest.mark.slow
def test_unknown_command_and_dataset() -> None:
    assert_one_line_error(run_cli("trian"), "trian")
    assert_one_line_error(run_cli("prepare", "cifar"), "cifar")


@pytest.mark.slow
def test_missing_data_directory(train, tmp_path: Path, tracking) -> None:
    result = train("experiment=mnist_cnn", "debug=fast", f"data.path={tmp_path}/nowhere")
    assert_one_line_error(result, "nowhere", "modelyard prepare digits")
    assert all_runs(tracking) == []


@pytest.mark.slow
def test_corrupt_data_file_is_caught_by_its_hash_by_the_command(train, digits_copy: Path,
                                                                tracking) -> None:
    target = digits_copy / "train.npz"
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    target.write_bytes(bytes(raw))
    result = train("experiment=mnist_cnn", "debug=fast", f"data.path={digits_copy}")
    assert_one_line_error(result, "train.npz", "sha256")
    assert all_runs(tracking) == []


@pytest.mark.slow
def test_truncated_file_without_manifest_by_the_command(train, digits_copy: Path,
                                                        tracking) -> None:
    (digits_copy / "manifest.json").unlink()
    target = digits_copy / "val.npz"
    target.write_bytes(target.read_bytes()[:1000])
    result = train("experiment=mnist_cnn", "debug=fast", f"data.path={digits_copy}")
    assert_one_line_error(result, "val.npz", "unreadable")
    assert all_runs(tracking) == []


@pytest.mark.slow
def test_missing_split_file_by_the_command(train, digits_copy: Path, tracking) -> None:
    (digits_copy / "manifest.json").unlink()
    (digits_copy / "test.npz").unlink()
    result = train("experiment=mnist_cnn", "debug=fast", f"data.path={digits_copy}")
    assert_one_line_error(result, "test.npz", "missing")


@pytest.mark.slow
def test_user_csv_missing_a_configured_column_by_the_command(train, user_market: Path,
                                                             tracking) -> None:
    frame = pd.read_csv(user_market / "val.csv").drop(columns=["fertility"])
    frame.to_csv(user_market / "val.csv", index=False)
    result = train("experiment=market_regressor", "debug=fast", f"data.path={user_market}")
    assert_one_line_error(result, "val.csv", "fertility")
    assert all_runs(tracking) == []


@pytest.mark.slow
def test_nan_in_features_by_the_command(train, user_market: Path, tracking) -> None:
    frame = pd.read_csv(user_market / "train.csv")
    frame.loc[3, "life_expectancy"] = float("nan")
    frame.to_csv(user_market / "train.csv", index=False)
    result = train("experiment=market_regressor", "debug=fast", f"data.path={user_market}")
    assert_one_line_error(result, "train.csv", "NaN", "life_expectancy")
    assert all_runs(tracking) == []


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize(("uri", "fragment"), UNUSABLE_STORES)
def test_unusable_tracking_store(train, uri: str, fragment: str) -> None:
    # checked before torch loads: one line and exit 2, not minutes of client retries
    result = train("experiment=market_regressor", "debug=fast",
                   env={"MLFLOW_TRACKING_URI": uri})
    assert_one_line_error(result, fragment)
    assert result.returncode == 2
    assert "secret" not in result.stderr


@pytest.mark.slow
def test_junk_async_logging_buffer_from_the_environment_by_the_command(train, tracking) -> None:
    result = train("experiment=market_regressor", "debug=fast",
                   env={"MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS": "0.5"})
    assert_one_line_error(result, "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS", "0.5")
    assert all_runs(tracking) == []


@pytest.mark.slow
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
    while not any(r.data.metrics for r in all_runs(tracking)):  # pytest-timeout bounds it
        assert process.poll() is None, process.stderr.read()[-2000:]
        time.sleep(1)  # wait for the first epoch's metrics: fitting is under way
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    [run] = all_runs(tracking)
    assert run.info.status in ("FAILED", "KILLED"), stderr[-2000:]


@pytest.mark.slow
def test_registry_commands_on_missing_things(tracking, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("predict", "mnist-cnn", f"{tmp_path}/no.png", env=tracking),
                          "no.png")
    text = tmp_path / "r.txt"
    text.write_text("fine\n")
    assert_one_line_error(run_cli("predict", "nope", str(text), env=tracking), "nope")
    assert_one_line_error(run_cli("models", "promote", "nope", env=tracking), "nope")
    assert_one_line_error(run_cli("models", "rollback", "nope", env=tracking), "nope")
    # a usage mistake: argparse's message, one line, pointing at the subcommand's --help
    frobnicate = run_cli("models", "frobnicate", env=tracking)
    assert_one_line_error(frobnicate, "frobnicate", "modelyard models --help")
    assert frobnicate.returncode == 2
    assert_one_line_error(run_cli("models", "reproduce", "nope/1", env=tracking), "nope/1")
    assert_one_line_error(run_cli("models", "reproduce", "nope", env=tracking), "<name>/<version>")
