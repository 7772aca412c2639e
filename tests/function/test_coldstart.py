"""Cold start, structurally: importing functions/main.py pulls in none of the heavy clients,
and needs no configuration (that is read at the first event)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.support import procs

MAIN = Path(__file__).resolve().parents[2] / "functions" / "main.py"
HEAVY = ["google.cloud.iot_v1", "google.api_core", "grpc", "google.protobuf", "proto",
         "requests", "clearblade.cloud.iot_v1", "bridge.mender", "bridge.registry",
         "bridge.factory", "bridge.sandbox"]

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("main", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
entry = ["on_device_event", "on_device_event_legacy", "on_push", "provision", "reconcile"]
print(json.dumps({"heavy": [m for m in sys.argv[2:] if m in sys.modules],
                  "entry_points": [e for e in entry if callable(getattr(module, e, None))],
                  "bridge_loaded": "bridge.runtime" in sys.modules}))
"""


def test_importing_main_loads_no_heavy_client_and_needs_no_configuration() -> None:
    out = procs.run([sys.executable, "-c", PROBE, str(MAIN), *HEAVY],
                    env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["bridge_loaded"] is True
    assert result["heavy"] == []
    assert len(result["entry_points"]) == 5


def test_a_bad_log_level_is_a_configuration_error_at_first_use_not_an_import_crash() -> None:
    probe = ("import importlib.util, sys\n"
             "spec = importlib.util.spec_from_file_location('main', sys.argv[1])\n"
             "module = importlib.util.module_from_spec(spec)\n"
             "spec.loader.exec_module(module)\n"
             "from bridge.errors import ConfigError\n"
             "try:\n"
             "    module.RUNTIME.settings()\n"
             "except ConfigError as exc:\n"
             "    print('config error:', exc)\n")
    out = procs.run([sys.executable, "-c", probe, str(MAIN)],
                    env={"PATH": "/usr/bin:/bin", "LOG_LEVEL": "verbose"}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "config error:" in out.stdout and "LOG_LEVEL must be" in out.stdout
    [line] = [x for x in out.stdout.splitlines() if x.startswith("{")]
    assert json.loads(line)["severity"] == "CRITICAL"
