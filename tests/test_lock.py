"""The promotion lock: its lease, heartbeat and wait come from conf/registry; a holder that
stopped beating loses the lock, a live one keeps it, and a lease shorter than the heartbeat
is refused."""

from __future__ import annotations

import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from modelyard.errors import ConfigError, ModelyardError
from modelyard.registry.lock import holder_of, lock_name, promotion_lock
from modelyard.registry.promotion import lock_settings

FAST = {"lease_s": 2.0, "heartbeat_s": 0.2, "wait_s": 1.0}


def test_lock_settings_come_from_conf_and_take_registry_lock_overrides() -> None:
    assert lock_settings([]) == {"lease_s": 60, "heartbeat_s": 5, "wait_s": 600}
    assert lock_settings(["registry.lock.lease_s=20", "registry.policy.mnist_cnn.floor=0.5"]) \
        == {"lease_s": 20, "heartbeat_s": 5, "wait_s": 600}


def test_a_silent_holder_loses_the_lock_and_the_model_says_who(store: str) -> None:
    client = MlflowClient(store, registry_uri=store)
    client.create_registered_model("m")
    client.create_registered_model(lock_name("m"), tags={
        "holder": "gone-host:4242 since then", "heartbeat": str(time.time() - 3)})
    with promotion_lock(client, "m", **FAST):
        assert holder_of(client, "m")[0] != "gone-host:4242 since then"
    assert holder_of(client, "m") is None  # released
    assert client.get_registered_model("m").tags["promotion.lock_broken"].startswith(
        "gone-host:4242 since then at ")


def test_a_live_holder_keeps_the_lock_past_its_lease(store: str) -> None:
    client = MlflowClient(store, registry_uri=store)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with promotion_lock(client, "m", **{**FAST, "lease_s": 0.6}):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    try:  # its heartbeat (0.2 s) keeps it inside the 0.6 s lease for the whole 1 s wait
        with pytest.raises(ModelyardError, match="still holds the promotion lock of m"), \
                promotion_lock(client, "m", **{**FAST, "lease_s": 0.6}):
            pass
    finally:
        release.set()
        holder.join()


def test_a_heartbeat_as_long_as_the_lease_is_refused(store: str) -> None:
    client = MlflowClient(store, registry_uri=store)
    with pytest.raises(ConfigError, match="heartbeat_s"), \
            promotion_lock(client, "m", lease_s=5, heartbeat_s=5, wait_s=1):
        pass
