"""Real services for team-mode tests: a throw-away PostgreSQL cluster and `modelyard server`.

PostgreSQL comes from the distribution (`.ci/run` installs it). `initdb` refuses root, so as
root the cluster belongs to the `postgres` user in a directory that user owns.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# The database role, and the team server's admin in the team-mode tests (MLflow wants 12+
# characters for a user's password): the password must never show up in MLflow.
USER, PASSWORD = "alice", "s3cret-pw-2718"


def postgres_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    found = shutil.which("initdb") or (candidates[-1] if candidates else None)
    return Path(found).resolve().parent if found else None  # Debian links some into PATH


class Postgres:
    """A cluster on a loopback port; the superuser connects over its Unix socket only."""

    def __init__(self, bindir: Path, port: int) -> None:
        self.bindir, self.port = bindir, port
        self.root = Path(tempfile.mkdtemp(prefix="modelyard-pg-"))
        self.as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self.as_owner, str(self.bindir / tool), *args],
                              capture_output=True, text=True, cwd=self.root, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr.strip()[-2000:]}")

    def start(self) -> None:
        data = self.root / "data"
        self._run("initdb", "-D", str(data), "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256")
        self._run("pg_ctl", "-D", str(data), "-l", str(self.root / "log"), "-w", "start", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1")
        self.sql(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")

    def sql(self, statement: str) -> None:
        self._run("psql", "-h", str(self.root), "-p", str(self.port), "-U", "postgres",
                  "-v", "ON_ERROR_STOP=1", "-c", statement)

    def new_database(self, name: str) -> str:
        self.sql(f"CREATE DATABASE {name} OWNER {USER}")
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def wait_for_http(url: str, process: subprocess.Popen, log, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if process.poll() is not None:
                log.seek(0)
                message = log.read()[-3000:]
                raise RuntimeError(f"{process.args[0]} exited: {message}") from None
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextmanager
def background(command: list[str], env: dict[str, str],
               ready_url: str) -> Iterator[subprocess.Popen]:
    """Run a server in its own process group until the block ends; wait until it answers.
    Its log goes to a file: a server logs every request, and a pipe no one reads would fill
    and stop it."""
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log,
                                   text=True, start_new_session=True)
        try:
            wait_for_http(ready_url, process, log)
            yield process
        finally:
            if process.poll() is None:  # else the test killed it
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def post_json(url: str, payload: object) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@contextmanager
def served_model(model_uri: str, env: dict[str, str], port: int) -> Iterator[str]:
    """`mlflow models serve` in the test's venv; yields its /invocations URL."""
    bindir = Path(sys.executable).parent
    command = [str(bindir / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager",
               "local", "--host", "127.0.0.1", "--port", str(port)]
    full_env = {**os.environ, **env, "PATH": f"{bindir}:{os.environ['PATH']}"}  # uvicorn
    with background(command, full_env, f"http://127.0.0.1:{port}/ping"):
        yield f"http://127.0.0.1:{port}/invocations"
