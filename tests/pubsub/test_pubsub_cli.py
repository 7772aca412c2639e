"""The command line around Pub/Sub: `sandbox` starting and stopping its own emulator, its
lock, bind errors and add-device, the fallback to direct delivery where the emulator is
missing, and `listen`'s one-line errors and /healthz."""

from __future__ import annotations

import os
import re
import signal
import sys
import tomllib
from pathlib import Path

import pytest
import requests

from bridge.pubsub import clients
from bridge.pubsub.emulator import Emulator
from bridge.pubsub.topology import Topology, ensure
from tests.function.helpers import public_pem
from tests.pubsub.pubsub_support import (
    POLICY,
    Process,
    answers,
    bridge_argv,
    child_env,
    run,
    wait_for,
)
from tests.registry.registry_support import PushEndpoint

pytestmark = pytest.mark.e2e
REGISTRY_PATH = "projects/sandbox-project/locations/us-central1/registries/sandbox-registry"


def _printed(output: str, label: str) -> str:
    match = re.search(rf"^\s*{label}:\s+(\S+)", output, re.MULTILINE)
    assert match, f"{label} not printed:\n{output}"
    return match.group(1)


def _one_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_sandbox_runs_its_own_emulator_and_stops_it(tmp_path: Path) -> None:
    from tests.pubsub.pubsub_support import require_emulator

    require_emulator()
    data = tmp_path / "data"
    push = "http://127.0.0.1:9/push"
    box = Process(bridge_argv("sandbox", "--data", str(data), "--mender-port", "0",
                              "--registry-port", "0", "--no-tls", "--push-endpoint", push),
                  tmp_path / "sandbox.log")
    try:
        box.wait_output("Ctrl-C stops the sandbox", timeout=120)
        out = box.output()
        host = _printed(out, "Pub/Sub emulator")
        config = tomllib.loads((data / "bridge.toml").read_text())
        assert config["pubsub_emulator_host"] == host
        assert config["pubsub_subscription"] == _printed(out, "pull subscription")
        subscriber = clients.subscriber(host)
        try:
            pull = subscriber.get_subscription(subscription=config["pubsub_subscription"])
            pushed = subscriber.get_subscription(subscription=_printed(out, "push subscription"))
            parked = subscriber.get_subscription(
                subscription=_printed(out, "dead-letter subscription"))
        finally:
            subscriber.close()
        topic, dead = _printed(out, "topic"), _printed(out, "dead-letter topic")
        assert (pull.topic, pushed.topic, parked.topic) == (topic, topic, dead)
        assert pushed.push_config.push_endpoint == push
        for sub in (pull, pushed):
            assert (sub.dead_letter_policy.dead_letter_topic,
                    sub.dead_letter_policy.max_delivery_attempts) == (dead, 5)
            assert sub.retry_policy.maximum_backoff.total_seconds() > 0

        second = run("sandbox", "--data", str(data), "--mender-port", "0", "--registry-port",
                     "0", "--pubsub", "direct")
        assert second.returncode == 2
        assert "is in use by another sandbox" in _one_line(second.stderr)
        port = int(config["iot_endpoint"].rsplit(":", 1)[1])
        busy = run("sandbox", "--data", str(tmp_path / "other"), "--mender-port", "0",
                   "--registry-port", str(port), "--pubsub", "direct")
        assert busy.returncode == 2 and "--registry-port" in _one_line(busy.stderr)

        key = tmp_path / "device.pem"
        key.write_text(public_pem())
        added = run("sandbox", "add-device", "cli-dev", "--key", str(key), "--data", str(data))
        assert added.returncode == 0, added.stderr
        got = requests.get(f"{config['iot_endpoint']}/v1/{REGISTRY_PATH}/devices/cli-dev",
                           timeout=10).json()
        assert got["credentials"][0]["publicKey"]["format"] in ("ES256_PEM", 2)

        assert box.signal(signal.SIGTERM) == 0
        assert "sandbox stopped" in box.output()
        assert not answers(f"http://{host}/")  # the emulator went with it
    finally:
        box.kill()


def test_without_the_emulator_the_sandbox_says_so_and_delivers_directly(
        tmp_path: Path) -> None:
    endpoint = PushEndpoint().start()
    data = tmp_path / "data"
    # No Cloud SDK on this PATH: the emulator cannot be found.
    env = child_env(PATH=str(Path(sys.executable).parent))
    box = Process(bridge_argv("sandbox", "--data", str(data), "--mender-port", "0",
                              "--registry-port", "0", "--no-tls", "--push-endpoint",
                              endpoint.url, "--decommission-delay-ms", "1234",
                              "--rate-limit-quota", "7"), tmp_path / "sandbox.log", env=env)
    try:
        box.wait_output("Ctrl-C stops the sandbox")
        notes = [x for x in box.output().splitlines()
                 if x.startswith(("events:", "Pub/Sub emulator:"))]
        assert notes == ["events:             posted by the registry stand-in (the Pub/Sub "
                         "emulator is not installed: events are delivered directly)"]
        assert "pubsub_" not in (data / "bridge.toml").read_text()
        mender = tomllib.loads((data / "bridge.toml").read_text())["mender_url"]
        faults = requests.get(f"{mender}/_sandbox/faults", timeout=10).json()
        assert (faults["decommission_delay_ms"], faults["rate_limit_quota"]) == (1234, 7)
        key = tmp_path / "device.pem"
        key.write_text(public_pem())
        assert run("sandbox", "add-device", "direct-dev", "--key", str(key), "--data",
                   str(data), env=env).returncode == 0
        wait_for(lambda: len(endpoint.received) == 1, "the push envelope")
        assert b"direct-dev" in __import__("base64").b64decode(
            __import__("json").loads(endpoint.received[0])["message"]["data"])
        assert box.signal(signal.SIGINT) == 0
    finally:
        box.kill()
        endpoint.stop()


def test_an_unknown_host_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = run("sandbox", "--data", str(tmp_path), "--host", "no-such-host.invalid",
               "--pubsub", "direct")
    assert done.returncode == 2
    assert "unknown host 'no-such-host.invalid'" in _one_line(done.stderr)


@pytest.fixture
def config(emulator: Emulator, project: str, tmp_path: Path) -> Path:
    path = tmp_path / "bridge.toml"
    path.write_text('mender_url = "http://127.0.0.1:9"\nmender_token = "sandbox-token-123"\n'
                    f'iot_project = "sandbox-project"\npubsub_emulator_host = '
                    f'"{emulator.host_port}"\n')
    return path


def test_listen_needs_an_existing_subscription(config: Path, project: str) -> None:
    missing = run("listen", "--config", str(config))
    assert missing.returncode == 2 and "no subscription" in missing.stderr
    malformed = run("listen", "--config", str(config), "--subscription", "nope")
    assert malformed.returncode == 2 and "is not a subscription name" in malformed.stderr
    absent = run("listen", "--config", str(config), "--subscription",
                 f"projects/{project}/subscriptions/nothing-here")
    assert absent.returncode == 2
    assert (f"mender-bridge: error: subscription projects/{project}/subscriptions/"
            "nothing-here not found") in absent.stderr


def test_listen_serves_healthz_and_stops_on_sigterm(
        emulator: Emulator, config: Path, project: str, tmp_path: Path) -> None:
    topology = Topology(project)
    publisher, subscriber = (clients.publisher(emulator.host_port),
                             clients.subscriber(emulator.host_port))
    ensure(publisher, subscriber, topology, POLICY)
    subscriber.close()
    worker = Process(bridge_argv("listen", "--config", str(config), "--subscription",
                                 topology.subscription, "--healthz-port", "0"),
                     tmp_path / "listen.log", env=child_env())
    try:
        port = int(worker.wait_output(r"/healthz on port (\d+)").group(1))
        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        # An event the bridge cannot read is acknowledged (logged as ignored), not retried.
        publisher.publish(topology.topic, b"not a log entry").result()
        wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
                 .json()["pull"]["acked"] == 1, "the unreadable event acknowledged")
        assert requests.get(f"http://127.0.0.1:{port}/other", timeout=10).status_code == 404
        assert worker.signal(signal.SIGTERM) == 0
    finally:
        worker.kill()
        publisher.stop()
    assert "event ignored" in worker.output()
    assert not os.path.exists(f"/proc/{worker.proc.pid}")
