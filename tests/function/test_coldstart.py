"""Cold start, structurally: importing functions/main.py pulls in none of the heavy clients,
and needs no configuration (that is read at the first event)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    out = subprocess.run([sys.executable, "-c", PROBE, str(MAIN), *HEAVY],
                         env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                         timeout=60, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["bridge_loaded"] is True
    assert result["heavy"] == []
    assert len(result["entry_points"]) == 5
