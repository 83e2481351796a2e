"""One promotion (or rollback) of a model at a time, across processes and machines, with a
lease: a holder that stops heart-beating (killed, its machine gone) loses the lock.

Creating a registered model is atomic in every MLflow store (a unique name in the database),
so the lock is a registered model `<name>.promotion-lock` that exists while it is held; its
tags say who holds it and when that holder last beat.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from modelyard.errors import ConfigError, ModelyardError

SUFFIX = ".promotion-lock"


def lock_name(name: str) -> str:
    return f"{name}{SUFFIX}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def holder_of(client: MlflowClient, name: str) -> tuple[str, float] | None:
    """(holder, seconds since its last heartbeat), or None when the lock is free."""
    try:
        tags = client.get_registered_model(lock_name(name)).tags
    except MlflowException:
        return None
    return tags.get("holder", "?"), time.time() - float(tags.get("heartbeat", 0))


def break_lock(client: MlflowClient, name: str, reason: str) -> str | None:
    """Remove the lock whoever holds it; the model records who lost it and why."""
    held = holder_of(client, name)
    if held is None:
        return None
    try:
        client.delete_registered_model(lock_name(name))
    except MlflowException:
        return None  # someone else broke or released it first
    with suppress(MlflowException):  # no such model: nothing to audit on
        client.set_registered_model_tag(name, "promotion.lock_broken",
                                        f"{held[0]} at {_now()}: {reason}")
    return held[0]


def _beat(client: MlflowClient, name: str, every_s: float, stop: threading.Event) -> None:
    while not stop.wait(every_s):
        try:
            client.set_registered_model_tag(lock_name(name), "heartbeat", str(time.time()))
        except MlflowException:
            return  # broken by someone who thought we were dead: nothing left to renew


@contextmanager
def promotion_lock(client: MlflowClient, name: str, lease_s: float, heartbeat_s: float,
                   wait_s: float) -> Iterator[None]:
    """Hold the lock of `name` for the block (settings: conf/registry, `lock`)."""
    if not 0 < heartbeat_s < lease_s:
        raise ConfigError(f"registry.lock: heartbeat_s ({heartbeat_s}) must be above 0 and "
                          f"below lease_s ({lease_s}), or a live holder loses its lock")
    holder = f"{socket.gethostname()}:{os.getpid()} since {_now()}"
    deadline, told = time.monotonic() + wait_s, False
    while True:
        try:
            client.create_registered_model(lock_name(name), tags={
                "holder": holder, "heartbeat": str(time.time())})
            break
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        held = holder_of(client, name)
        if held is None:
            continue  # released meanwhile
        who, silent_s = held
        if silent_s > lease_s:
            break_lock(client, name, f"no heartbeat for {silent_s:.0f} s")
            print(f"broke the promotion lock of {name}: {who} stopped {silent_s:.0f} s ago",
                  file=sys.stderr)
            continue
        if time.monotonic() > deadline:
            raise ModelyardError(f"{who} still holds the promotion lock of {name}; if it is not "
                                 f"running, `modelyard models unlock {name}`")
        if not told:
            print(f"waiting for the promotion lock of {name}, held by {who}", file=sys.stderr)
            told = True
        time.sleep(0.5)
    stop = threading.Event()
    beating = threading.Thread(target=_beat, args=(client, name, heartbeat_s, stop), daemon=True)
    beating.start()
    try:
        yield
    finally:
        stop.set()
        beating.join()
        with suppress(MlflowException):  # broken while we held it
            client.delete_registered_model(lock_name(name))
