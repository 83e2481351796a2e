"""Fault injection: a `modelyard` command killed with SIGKILL at each step boundary of
train -> register -> promote -> rollback, then the natural next command, which must complete
and leave a consistent store; signals, an unusable store, a read-only disk and out-of-range
values, each through the command a user runs.

A kill point is a line of the command's own output (modelyard's, MLflow's, Lightning's):
`run_until` reads the combined output line by line and kills the process group as soon as a
line matches. Where no line marks a boundary (after the champion alias moved, once the lock
is taken), SQLAlchemy's statement echo (MLFLOW_SQLALCHEMYSTORE_ECHO) does: "the first
statement after the alias write" can only appear once that write has been committed.

A SIGKILLed job cannot end its own MLflow run: the next command ends it KILLED (every run
names its host and process; tracking/owner.py). So once a command has completed, no run is
RUNNING: neither its own nor one a killed job left.

The promotion lock's lease is the default one (60 s, conf/registry): instead of waiting a
minute per killed promotion, a waiting `promote` (once it has said who holds the lock) sees
the killed holder's last heartbeat moved 61 s into the past, which is what the lease measures.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from modelyard.tracking.owner import ENDED

from conftest import MODELYARD, all_runs, cli_env, client_for, free_port, run_cli
from services import background

pytestmark = pytest.mark.slow

TASK, NAME = "market_regressor", "market-regressor"
LOCK = f"{NAME}.promotion-lock"
# debug models are far from the real floor and from least squares
LOOSE = ["registry.policy.floor=1e9", "registry.policy.baseline=null"]
SQL_ECHO = {"MLFLOW_SQLALCHEMYSTORE_ECHO": "true"}
# the first statement after the write: the write is committed, nothing after it done yet
ALIAS_MOVED = [r"(INSERT INTO|UPDATE) registered_model_aliases", r"BEGIN \(implicit\)"]
LOCK_TAKEN = [r"INSERT INTO registered_models\b", r"BEGIN \(implicit\)"]
EVALUATION_STARTS = r"Testing metrics on first row"  # mlflow.models.evaluate, first model


@dataclass
class Job:
    args: tuple[str, ...]
    pid: int
    lines: list[str] = field(default_factory=list)
    killed_at: str | None = None
    returncode: int | None = None

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def describe(self) -> str:
        return f"modelyard {' '.join(self.args[:3])} -> {self.returncode}\n{self.output[-3000:]}"


def run_until(*args: str, env: dict[str, str], kill_at: str | list[str] | None = None,
              on_line: Callable[[str], None] | None = None, timeout: float = 300,
              popen: dict | None = None) -> Job:
    """Run `modelyard *args`, reading stdout and stderr together line by line; SIGKILL its
    process group at the first line matching `kill_at` (a list: lines matching each pattern,
    one after another). `on_line` sees every line as it comes."""
    patterns = [re.compile(p) for p in ([kill_at] if isinstance(kill_at, str) else kill_at or [])]
    process = subprocess.Popen(
        [MODELYARD, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        errors="replace", start_new_session=True,
        # MLflow's own narration marks some kill points: modelyard.quiet would drop it
        env=cli_env({"PYTHONUNBUFFERED": "1", "MODELYARD_LIBRARY_NOTICES": "show", **env}),
        **(popen or {}),
    )
    job = Job(args, process.pid)

    def read() -> None:
        for line in process.stdout:
            job.lines.append(line)
            if patterns and job.killed_at is None and patterns[0].search(line):
                patterns.pop(0)
                if not patterns:
                    os.killpg(process.pid, signal.SIGKILL)
                    job.killed_at = line.strip()
            if on_line:
                on_line(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        job.returncode = process.wait(timeout)
    finally:
        if job.returncode is None:  # hung: never leave it behind
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    reader.join(30)
    return job


class Store:
    """The test's tracking store, what its registry claims, and the runs killed jobs left."""

    def __init__(self, tracking: dict[str, str]) -> None:
        self.env = tracking
        self.client: MlflowClient = client_for(tracking)
        self.orphans: set[str] = set()  # runs RUNNING right after a kill
        self.points: list[list[str]] = []  # [kill point, state after it, next command: exit]

    def running(self) -> set[str]:
        return {r.info.run_id for r in all_runs(self.env) if r.info.status == "RUNNING"}

    def versions(self) -> dict[str, object]:
        return {str(v.version): v for v in self.client.search_model_versions(f"name='{NAME}'")}

    def aliases(self) -> dict[str, str]:
        names = {m.name for m in self.client.search_registered_models()}
        return ({k: str(v) for k, v in self.client.get_registered_model(NAME).aliases.items()}
                if NAME in names else {})

    def lock_held(self) -> bool:
        return LOCK in {m.name for m in self.client.search_registered_models()}

    def killed(self, job: Job, label: str) -> None:
        assert job.killed_at, f"never reached {label}:\n{job.describe()}"
        assert job.returncode == -signal.SIGKILL
        self.orphans |= self.running()
        self.points.append([f"{' '.join(job.args[:2])} at {label}", self.summary(), ""])

    def next_command(self, job: Job) -> None:
        """Record what the command after a kill did (for the printed table)."""
        for point in self.points:
            if not point[2]:
                point[2] = f"{' '.join(job.args[:2])}: exit {job.returncode}"

    def summary(self) -> str:
        versions = self.versions()
        decisions = {n: v.tags["promotion.decision"] for n, v in versions.items()
                     if "promotion.decision" in v.tags}
        return (f"aliases {self.aliases()} decisions {decisions} versions {len(versions)} "
                f"lock {'held' if self.lock_held() else 'free'} RUNNING {len(self.running())}")

    def backdate_lock(self, line: str) -> None:
        """`on_line` of a command that may wait for a killed holder's lock: its lease passes."""
        if "waiting for the promotion lock" in line:
            self.client.set_registered_model_tag(LOCK, "heartbeat", str(time.time() - 61))

    def problems(self, settled: bool = True) -> list[str]:
        """What is inconsistent. `settled`: after a command that completed (no lock, nothing
        pending, no RUNNING run), else right after a kill."""
        found = []
        versions, aliases = self.versions(), self.aliases()
        champion = aliases.get("champion")
        if settled and self.lock_held():
            found.append("promotion lock left behind")
        repeated = [w for w, n in Counter(v.tags.get("weights_sha256") for v in versions.values())
                    .items() if n > 1]
        if repeated:
            found.append(f"same weights registered twice: {repeated}")
        for number, version in versions.items():
            tags = version.tags
            decision = tags.get("promotion.decision")
            if settled and decision == "pending":
                found.append(f"v{number}: promotion still pending")
            if number == champion and decision not in ("promoted", "pending"):
                found.append(f"champion v{number} has promotion.decision={decision}")
            if decision == "promoted" and number != champion and not self._left_office(
                    number, tags, versions):
                found.append(f"v{number} says promoted, but champion is v{champion} and no "
                             f"later promotion or rollback replaced it")
            for key, value in tags.items():
                if key.startswith("challenged_by.v") and value == "promoted":
                    winner = versions[key.removeprefix("challenged_by.v")].tags
                    if winner.get("promotion.previous_champion") != number:
                        found.append(f"v{number}: {key} but the winner replaced another")
            run = self.client.get_run(tags["source_run"])
            if run.data.tags.get("weights_sha256") != tags.get("weights_sha256"):
                found.append(f"v{number}: source run {run.info.run_id} has other weights")
            if settled and run.info.status != "FINISHED":
                found.append(f"v{number}: source run {run.info.run_id} is {run.info.status}")
        if settled and self.running():
            found.append(f"RUNNING though no job runs: {self.running()}")
        ended = {r.info.run_id: r for r in all_runs(self.env) if r.info.run_id in self.orphans}
        if settled and any(r.info.status == "KILLED" and ENDED not in r.data.tags
                           for r in ended.values()):
            found.append("a killed job's run ended KILLED without saying why")
        return found

    @staticmethod
    def _left_office(number: str, tags: dict, versions: dict) -> bool:
        """A version that was champion no longer is: a later promotion replaced it, or a
        rollback (after its promotion) demoted it."""
        replaced = any(v.tags.get("promotion.previous_champion") == number
                       and v.tags.get("promotion.decision") in ("promoted", "pending")
                       for v in versions.values())
        demoted = tags.get("rollback.demoted_at", "") >= tags.get("promotion.time", "~")
        return replaced or demoted

    def consistent(self, after: Job | None = None) -> None:
        if after is not None:
            self.next_command(after)
        problems = self.problems()
        assert not problems, problems if after is None else (problems, after.describe())


def run_id_printed(job: Job) -> str:
    found = re.search(r"^MLflow run: (\w+)", job.output, re.M)
    assert found, job.describe()
    return found.group(1)


def test_kill_points_from_training_to_rollback(data_dir: Path, tmp_path: Path, tracking) -> None:
    store = Store(tracking)
    data = f"paths.data_dir={data_dir}"

    def train(output: str, *overrides: str, **kw) -> Job:
        return run_until("train", f"experiment={TASK}", "debug=fast", data,
                         f"paths.output_root={tmp_path}/outputs",
                         f"paths.output_dir={tmp_path}/outputs/{output}", *overrides,
                         env=tracking, **kw)

    def register(output: str, **kw) -> Job:
        return run_until("models", "register", TASK, "--model-file",
                         f"{tmp_path}/outputs/{output}/model.ckpt", data, env=tracking, **kw)

    def promote(kill_at: str | list[str] | None = None) -> Job:
        echo = SQL_ECHO if isinstance(kill_at, list) else {}  # a kill after a statement
        return run_until("models", "promote", NAME, *LOOSE, env={**tracking, **echo},
                         kill_at=kill_at, on_line=store.backdate_lock)

    def rollback(kill_at: list[str] | None = None) -> Job:
        echo = SQL_ECHO if kill_at else {}
        return run_until("models", "rollback", NAME, env={**tracking, **echo},
                         kill_at=kill_at, on_line=store.backdate_lock)

    def breaks_the_lock_of(killed: Job, job: Job) -> None:
        """`job` said who held the lock (the killed process), broke it, and the model says so."""
        waiting = [line for line in job.lines if "waiting for the promotion lock" in line]
        assert waiting and f":{killed.pid} " in waiting[0], job.describe()
        assert "broke the promotion lock" in job.output, job.describe()
        assert f":{killed.pid} " in store.client.get_registered_model(NAME).tags[
            "promotion.lock_broken"]

    # 1. train, killed while MLflow registers (the name exists; the version may): the training
    # run had already ended FINISHED. The same training again (same seed: same weights)
    # gives one version with the alias challenger, whichever side of "Created version" the
    # kill fell on.
    a = train("A", kill_at=r"Successfully registered model")
    store.killed(a, "'Successfully registered model'")
    run_a = run_id_printed(a)
    assert store.client.get_run(run_a).info.status == "FINISHED"
    assert not store.problems(settled=False)
    done = train("A-again")
    assert done.returncode == 0, done.describe()
    assert "registered: models:/market-regressor/1" in done.output
    assert store.versions()["1"].tags["source_run"] in (run_a, run_id_printed(done))
    assert store.aliases() == {"challenger": "1"}
    store.consistent(done)

    # 2. promote, killed while scoring: lock and the scoring runs left; the next promote says
    # who holds the lock, breaks it once its lease has passed, and promotes.
    killed = promote(kill_at=EVALUATION_STARTS)
    store.killed(killed, "evaluation start (scoring)")
    assert store.lock_held() and not store.problems(settled=False)
    done = promote()
    assert done.returncode == 0 and "PROMOTED" in done.output, done.describe()
    breaks_the_lock_of(killed, done)
    assert store.aliases() == {"champion": "1", "challenger": "1"}
    store.consistent(done)

    # 3. a better model: training killed right after it ended (before registering), the
    # registration killed inside MLflow's log_model (the training run re-opened), then once
    # the version exists (no alias yet); the third registration completes.
    b = train("B", "trainer.max_epochs=3", kill_at=r"^MLflow run:")
    store.killed(b, "'MLflow run:'")
    run_b = run_id_printed(b)
    assert store.client.get_run(run_b).info.status == "FINISHED" and len(store.versions()) == 1
    killed = register("B", kill_at=r"Validating input example against model signature")
    store.killed(killed, "log_model ('Validating input example')")
    assert not store.problems(settled=False)
    killed = register("B", kill_at=r"^Created version '2'")
    store.killed(killed, "'Created version'")
    assert not store.problems(settled=False)
    done = register("B", kill_at=r"^registered:")  # the last line: nothing left to cut short
    store.killed(done, "'registered:'")
    assert "registered: models:/market-regressor/2 (challenger)" in done.output
    v2 = store.versions()["2"]
    assert v2.tags["source_run"] == run_b  # its training run, not a stand-in import
    assert store.client.get_run(run_b).info.status == "FINISHED"  # registering ended it again
    assert store.aliases() == {"champion": "1", "challenger": "2"}
    store.consistent(done)

    # 4. promote, killed once the gate passed (before any tag): the next promote decides again.
    killed = promote(kill_at=r"Model validation passed")
    store.killed(killed, "'Model validation passed'")
    assert not store.problems(settled=False)
    done = promote()
    assert done.returncode == 0 and "PROMOTED" in done.output, done.describe()
    breaks_the_lock_of(killed, done)
    assert store.aliases()["champion"] == "2"
    assert store.versions()["1"].tags["challenged_by.v2"] == "promoted"
    store.consistent(done)

    # 5. rollback, killed once it holds the lock: the next rollback breaks it and rolls back.
    killed = rollback(kill_at=LOCK_TAKEN)
    store.killed(killed, "lock taken (rollback)")
    assert store.aliases()["champion"] == "2" and not store.problems(settled=False)
    done = rollback()
    assert done.returncode == 0 and "champion v2 -> v1" in done.output, done.describe()
    breaks_the_lock_of(killed, done)
    store.consistent(done)

    # 6. promote v2 again, killed after the champion alias moved: the tags said "pending" until
    # then; the next promote confirms it.
    killed = promote(kill_at=ALIAS_MOVED)
    store.killed(killed, "champion alias moved (promote)")
    assert store.aliases()["champion"] == "2" and not store.problems(settled=False)
    done = promote()
    assert done.returncode in (0, 3), done.describe()
    assert "already champion" in done.output or "PROMOTED" in done.output, done.describe()
    assert store.versions()["2"].tags["promotion.decision"] == "promoted"
    store.consistent(done)

    # the champion scores a user's file; a missing column is named in one line
    frame = pd.read_csv(data_dir / "market" / "test.csv").head(3).drop(columns=["fertility"])
    frame.to_csv(tmp_path / "no_fertility.csv", index=False)
    scored = run_cli("predict", NAME, str(tmp_path / "no_fertility.csv"), env=tracking)
    assert scored.returncode == 2
    [error] = [x for x in scored.stderr.splitlines() if x.startswith("modelyard: error:")]
    assert "fertility" in error and "Traceback" not in scored.stderr, scored.stderr[-2000:]

    # 7. rollback, killed after the champion alias moved back; rolling back again must finish
    # that rollback (and not roll back further).
    killed = rollback(kill_at=ALIAS_MOVED)
    store.killed(killed, "champion alias moved (rollback)")
    done = rollback()
    store.next_command(done)
    print("\nkill points:", *(" | ".join(point) for point in store.points), sep="\n  ")
    assert done.returncode == 0, done.describe()
    assert store.aliases()["champion"] == "1"
    store.consistent(done)


# -- signals ---------------------------------------------------------------------------------


def long_training(data_dir: Path, tmp_path: Path, *overrides: str) -> tuple[str, ...]:
    """A regressor training of 100 short epochs: seconds of fitting, nothing registered."""
    return ("train", f"experiment={TASK}", "debug=fast", "trainer.max_epochs=100",
            f"paths.data_dir={data_dir}", f"paths.output_root={tmp_path}/outputs",
            "registry.register=false", *overrides)


def interrupt_training(sig: signal.Signals | Callable[[], None], job_args: tuple[str, ...],
                       tmp_path: Path, tracking) -> tuple[Job, Path]:
    """`job_args` sent `sig` (or `sig()` called) once its first epoch's last.ckpt is on disk,
    i.e. while it fits; returns the job and its checkpoint directory."""
    process = subprocess.Popen(
        [MODELYARD, *job_args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        errors="replace", env=cli_env(tracking),
        # a child of a non-interactive shell or runner may inherit SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    jobs = tmp_path / "outputs" / TASK
    deadline = time.monotonic() + 300  # a hang guard, not a timing claim
    # last.ckpt, not just best.ckpt: it is written second, and the one a resume reads
    while not (found := sorted(jobs.glob("*/checkpoints/last.ckpt"))):
        assert process.poll() is None, "".join(output)[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(sig) if isinstance(sig, signal.Signals) else sig()
    try:
        returncode = process.wait(120)  # honoured within seconds; the bound only stops a hang
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(30)
    job = Job(job_args, process.pid, output, returncode=returncode)
    return job, found[0].parent


def only_run(tracking):
    runs = all_runs(tracking)
    assert len(runs) == 1, [(r.info.run_name, r.info.status) for r in runs]
    return runs[0]


def test_sigterm_ends_the_run_killed_with_143_and_resume_finishes_it(
    data_dir: Path, tmp_path: Path, tracking
) -> None:
    # the regressor's default monitor (train_loss): wherever in an epoch the signal lands, the
    # resume starts at the last finished epoch, whose checkpoint every callback can read
    training = long_training(data_dir, tmp_path)
    job, checkpoints = interrupt_training(signal.SIGTERM, training, tmp_path, tracking)
    assert job.returncode == 143, job.describe()
    assert "modelyard: stopped by SIGTERM" in job.output and "Traceback" not in job.output
    killed = only_run(tracking)
    assert killed.info.status == "KILLED"
    assert (checkpoints / "last.ckpt").is_file()

    resumed = run_cli(*training, "resume=true", env=tracking)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run = only_run(tracking)
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    assert run.data.tags["resumed_from"] == str(checkpoints / "last.ckpt")


def test_ctrl_c_ends_the_run_killed_with_130(data_dir: Path, tmp_path: Path, tracking) -> None:
    job, _ = interrupt_training(signal.SIGINT, long_training(data_dir, tmp_path), tmp_path,
                                tracking)
    assert job.returncode == 130, job.describe()
    assert "modelyard: stopped by SIGINT" in job.output
    assert only_run(tracking).info.status == "KILLED"


def test_a_server_lost_mid_training_stops_the_job_in_one_line_and_resume_continues_the_run(
    data_dir: Path, tmp_path: Path
) -> None:
    """The MLflow server dies while the job fits: bounded retries, then exit 2 with one line
    naming the last checkpoint; once the server is back, resume=true finishes the same run."""
    port = free_port()
    server = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
              str(port), "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path}/s.db",
              "--artifacts-destination", str(tmp_path / "artifacts")]
    env = cli_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # no job-runner children
    tracking = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
    training = long_training(data_dir, tmp_path, "monitor.metric=val_loss",
                             "callbacks.early_stopping=null")
    with background(server, env, f"http://127.0.0.1:{port}/health") as process:
        job, checkpoints = interrupt_training(lambda: os.killpg(process.pid, signal.SIGKILL),
                                              training, tmp_path, tracking)
    assert job.returncode == 2, job.describe()
    [error] = [x for x in job.lines if x.startswith("modelyard: error:")]
    uri = tracking["MLFLOW_TRACKING_URI"]
    assert error.startswith(f"modelyard: error: lost MLflow tracking store {uri} during run "), \
        error
    assert f"the last checkpoint is {checkpoints / 'last.ckpt'}" in error and "resume=true" in error
    assert "Traceback" not in job.output and (checkpoints / "last.ckpt").is_file()

    with background(server, env, f"http://127.0.0.1:{port}/health"):
        resumed = run_cli(*training, "resume=true", env=tracking)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        run = only_run(tracking)
    assert run.info.status == "FINISHED" and run.info.run_id in error
    assert run.data.tags["resumed_from"] == str(checkpoints / "last.ckpt")


# -- stores and disks ------------------------------------------------------------------------


def test_sqlite_store_in_a_missing_directory_is_an_error_not_a_new_store(
    data_dir: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no_such_dir"
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{missing}/x.db"}
    for args in (["train", f"experiment={TASK}", "debug=fast", f"paths.data_dir={data_dir}",
                  f"paths.output_root={tmp_path}/outputs"], ["models", "list"]):
        result = run_cli(*args, env=env)
        assert result.returncode == 2, result.stderr[-2000:]
        assert result.stderr.strip().splitlines() == [
            f"modelyard: error: MLflow tracking store sqlite:///{missing}/x.db: "
            f"no such directory {missing}"]
        assert not missing.exists()


def mount_namespace() -> str:
    unshare = shutil.which("unshare")
    if (os.geteuid() != 0 or not unshare
            or subprocess.run([unshare, "-m", "true"], capture_output=True).returncode):
        pytest.skip("needs root and mount namespaces to mount a directory of its own")
    return unshare


def read_only(directory: Path) -> list[str]:
    """A command prefix under which `directory` cannot be written: a read-only bind mount in a
    mount namespace of its own when root (root ignores permissions), else mode 0555."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        directory.chmod(0o555)
        return []
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"'
    return [mount_namespace(), "-m", "sh", "-c", script, "sh", str(directory)]


def test_a_full_disk_fails_the_run_in_one_line_and_leaves_no_partial_checkpoint(
    data_dir: Path, tmp_path: Path, tracking
) -> None:
    """The job directory on a 1 MB filesystem: the CNN's first checkpoint (13 MB) fills it."""
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    # the command runs on a fresh tmpfs; what it left there is listed before the mount goes
    script = ('mount -t tmpfs -o size=1m tmpfs "$1" && shift && "$@"; status=$?; '
              'find "$0" -name "*.ckpt*" | sed "s/^/left: /" >&2; exit $status')
    result = subprocess.run(
        [mount_namespace(), "-m", "sh", "-c", script, str(outputs), str(outputs), MODELYARD,
         "train", "experiment=mnist_cnn", "debug=fast", f"paths.data_dir={data_dir}",
         f"paths.output_root={outputs}", "registry.register=false"],
        capture_output=True, text=True, env=cli_env(tracking), timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    [error] = [x for x in result.stderr.splitlines() if x.startswith("modelyard: error:")]
    assert re.fullmatch(r"modelyard: error: cannot write \S+/checkpoints/best\.ckpt: "
                        r"No space left on device", error), error
    assert "Traceback" not in result.stderr
    assert "left: " not in result.stderr  # no checkpoint, whole or partial, on that disk
    assert [r.info.status for r in all_runs(tracking)] == ["FAILED"]


@pytest.mark.parametrize("where", ["artifact root", "output directory"])
def test_read_only_disk_fails_the_run_and_says_where(where: str, data_dir: Path, tmp_path: Path,
                                                     tracking) -> None:
    directory = tmp_path / ("mlartifacts" if where == "artifact root" else "outputs")
    prefix = read_only(directory)  # the store's artifacts go to <its directory>/mlartifacts
    args = ["train", f"experiment={TASK}", "debug=fast", f"paths.data_dir={data_dir}",
            f"paths.output_root={tmp_path}/outputs"]
    result = subprocess.run([*prefix, MODELYARD, *args], capture_output=True, text=True,
                            env=cli_env(tracking), timeout=300)
    assert result.returncode != 0
    assert str(directory) in result.stderr, result.stderr[-3000:]
    runs = all_runs(tracking)
    assert all(r.info.status == "FAILED" for r in runs), [r.info.status for r in runs]
    assert len(runs) == (1 if where == "artifact root" else 0)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 2
    assert len([x for x in result.stderr.splitlines() if x.startswith("modelyard: error:")]) == 1


# -- values ----------------------------------------------------------------------------------

OUT_OF_RANGE = [
    (["experiment=market_regressor", "data.batch_size=0"], "batch_size"),
    (["experiment=mnist_cnn", "model.dropout=1.5"], "dropout"),
    (["experiment=market_regressor", "trainer.max_epochs=-1"], "max_epochs"),
    (["experiment=mnist_cnn", "data=reviews"], "reviews"),
    (["experiment=mnist_cnn", "+model.dropuot=0.1"], "dropuot"),
]


@pytest.mark.parametrize(("overrides", "named"), OUT_OF_RANGE,
                         ids=[o[-1] for o, _ in OUT_OF_RANGE])
def test_bad_values_are_refused_before_any_run(overrides: list[str], named: str, train,
                                               tmp_path: Path, tracking) -> None:
    result = train(*overrides, "debug=fast")
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [x for x in result.stderr.splitlines() if x.startswith("modelyard: error:")]
    assert len(errors) == 1 and named in errors[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "mlflow.db").exists() or all_runs(tracking) == []


# -- inputs that are empty -------------------------------------------------------------------


def test_digits_without_images_is_a_data_error(train, tmp_path: Path, tracking) -> None:
    empty = tmp_path / "no_digits"
    empty.mkdir()
    for split in ("train", "val", "test"):
        np.savez(empty / f"{split}.npz", images=np.zeros((0, 28, 28), np.uint8),
                 labels=np.zeros(0, np.int64))
    result = train("experiment=mnist_cnn", "debug=fast", f"data.path={empty}")
    assert result.returncode == 2, result.stderr[-3000:]
    [error] = [x for x in result.stderr.splitlines() if x.startswith("modelyard: error:")]
    assert f"{empty}/train.npz" in error and "no images" in error
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "mlflow.db").exists() or all_runs(tracking) == []


def test_predict_on_an_empty_reviews_file_says_so(tmp_path: Path, tracking) -> None:
    empty = tmp_path / "reviews.txt"
    empty.write_text("\n  \n")
    result = run_cli("predict", "sentiment-lstm", str(empty), env=tracking)
    assert result.returncode == 2
    [error] = [x for x in result.stderr.splitlines() if x.startswith("modelyard: error:")]
    assert "no reviews" in error and "<U0" not in result.stderr, result.stderr[-2000:]
