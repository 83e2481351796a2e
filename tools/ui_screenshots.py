"""Screenshots of the MLflow UI as a person sees it: a model version's page and the page of the
run that trained it, rendered by headless Chromium against a real `mlflow server`, and a check
that what they should show is on them (datasets, lineage, descriptions).

    make ui-screenshots                                   # the project's mlflow.db
    python tools/ui_screenshots.py --tracking-uri sqlite:///path/m.db -o shots/ --model mnist-cnn

Needs Debian's `chromium` (`apt-get install chromium`). Exit 0: every page shows what it
should; 1: a page lacks something (listed); 2: bad input or no Chromium.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mlflow.tracking import MlflowClient

WINDOW = "1800,1400"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def page_text(dom: str) -> str:
    """The visible text of a dumped DOM, whitespace collapsed."""
    dom = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", dom)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())


def shoot(browser: str, url: str, png: Path, profile: Path) -> str:
    """Render `url` until the single-page app has settled; write the PNG, return the text."""
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={profile}", "--virtual-time-budget=20000",
         f"--window-size={WINDOW}", f"--screenshot={png}", "--dump-dom", url],
        capture_output=True, text=True, timeout=180)
    if done.returncode != 0 or not png.is_file():
        raise RuntimeError(f"chromium failed on {url}: {done.stderr.strip()[-500:]}")
    return page_text(done.stdout)


def start_server(tracking_uri: str, port: int, log: Path) -> subprocess.Popen:
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
               tracking_uri, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {log.read_text()[-2000:]}") from None
            time.sleep(0.5)
    stop(process)
    raise RuntimeError("mlflow server did not answer within 120 s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def expectations(client: MlflowClient, name: str, version: str) -> tuple[str, list[str],
                                                                          list[str]]:
    """(run page path, texts the run page must show, texts the version page must show)."""
    mv = client.get_model_version(name, version)
    run = client.get_run(mv.run_id)
    tags = run.data.tags
    # the page lists the training split and "+2" for the others
    datasets = [i.dataset.name for i in run.inputs.dataset_inputs
                if any(t.value == "train" for t in i.tags)]
    lineage = ["git.sha", "data.path", "data.manifest_sha256", "config", tags["git.sha"][:12]]
    run_page = [run.info.run_name, "Datasets", *(datasets or ["<a training dataset>"]),
                *lineage, "resolved config", "Description"]
    version_page = [f"Version {version}", "Description", "test metric", "Commit", "Data",
                    run.info.run_name, "resolved config", "config_sha256", "data.path"]
    if mv.tags.get("promotion.decision"):
        version_page += ["Promotion", mv.tags["promotion.decision"].upper()]
    path = f"#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    return path, run_page, version_page


def newest_version(client: MlflowClient, name: str | None) -> tuple[str, str]:
    models = [m for m in client.search_registered_models() if m.latest_versions
              and (name is None or m.name == name)]
    if not models:
        raise SystemExit(f"ui_screenshots: no registered model{' ' + name if name else ''} "
                         "with versions in this store: train one first")
    model = max(models, key=lambda m: m.last_updated_timestamp)
    versions = client.search_model_versions(f"name='{model.name}'")
    return model.name, str(max(int(v.version) for v in versions))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=os.environ.get(
        "MLFLOW_TRACKING_URI", f"sqlite:///{Path.cwd() / 'mlflow.db'}"))
    parser.add_argument("--model", help="registered model (default: the newest updated)")
    parser.add_argument("--version", help="its version (default: the newest)")
    parser.add_argument("-o", "--out", type=Path, default=Path("report/ui"))
    options = parser.parse_args(argv)
    browser = chromium()
    if browser is None:
        print("ui_screenshots: no chromium on PATH (apt-get install chromium)", file=sys.stderr)
        return 2
    if not options.tracking_uri.startswith("sqlite:///"):
        print(f"ui_screenshots: {options.tracking_uri}: give a sqlite:/// store "
              "(a server of its own is started on it)", file=sys.stderr)
        return 2
    database = Path(options.tracking_uri.removeprefix("sqlite:///"))
    if not database.is_file():
        print(f"ui_screenshots: {database}: no such MLflow store", file=sys.stderr)
        return 2
    client = MlflowClient(options.tracking_uri)
    name, version = newest_version(client, options.model)
    version = options.version or version
    run_path, run_texts, version_texts = expectations(client, name, version)
    options.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    missing: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(options.tracking_uri, port, Path(tmp) / "server.log")
        try:
            base = f"http://127.0.0.1:{port}/"
            for page, path, texts in (
                ("run", run_path, run_texts),
                ("version", f"#/models/{name}/versions/{version}", version_texts),
            ):
                png = options.out / f"{name}-v{version}-{page}.png"
                text = shoot(browser, base + path, png, Path(tmp) / "profile")
                (options.out / f"{name}-v{version}-{page}.txt").write_text(text + "\n")
                missing += [f"{page} page: {t!r}" for t in texts if t not in text]
                print(f"{png}  ({page} page of {name} v{version})")
        finally:
            stop(server)
    if missing:
        print("missing from the pages:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
