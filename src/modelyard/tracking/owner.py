"""Which process owns a RUNNING run, and ending the runs whose process is gone.

A job killed with SIGKILL (`kill -9`, the OOM killer, a container stopped hard) cannot end its
MLflow run, which would then stay RUNNING for ever. Every run modelyard opens is tagged with
its host and process; the next modelyard command on that host that opens the store ends, as
KILLED and with a tag saying why, each RUNNING run whose process is gone. A run owned by
another host is left alone: its process cannot be checked from here, and its own host's next
command ends it.
"""

from __future__ import annotations

import socket
import sys
import time

import psutil

HOST, PID, STARTED = "process.host", "process.pid", "process.started"
ENDED = "process.ended_by"
SAME_START_S = 1.0  # start times are derived from the boot time, which the kernel may round


def owner_tags() -> dict[str, str]:
    """Tags that name this process: host, pid and start time (a reused pid starts later)."""
    return owner_tags_of(psutil.Process().pid)


def owner_tags_of(pid: int) -> dict[str, str]:
    process = psutil.Process(pid)
    return {HOST: socket.gethostname(), PID: str(pid), STARTED: f"{process.create_time():.2f}"}


def is_alive(pid: int, started: float) -> bool:
    """Whether the process `pid` that started at `started` still runs (a zombie does not)."""
    try:
        process = psutil.Process(pid)
        return (abs(process.create_time() - started) < SAME_START_S
                and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def end_orphaned_runs(client) -> list[str]:
    """End KILLED every RUNNING run of this host whose process is gone; return their ids."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    host = socket.gethostname()
    running = client.search_runs(
        experiments, f"attributes.status = 'RUNNING' and tags.`{HOST}` = '{host}'",
        max_results=1000)
    ended = []
    for run in running:
        tags = run.data.tags
        pid = int(tags[PID])
        if is_alive(pid, float(tags.get(STARTED, 0))):
            continue
        when = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        client.set_tag(run.info.run_id, ENDED,
                       f"process {pid} on {host} was gone at {when} (killed without a chance "
                       f"to end its run); a later modelyard command ended it")
        client.set_terminated(run.info.run_id, "KILLED")
        print(f"modelyard: run {run.info.run_name} ({run.info.run_id}) ended KILLED: its "
              f"process {pid} is gone", file=sys.stderr)
        ended.append(run.info.run_id)
    return ended
