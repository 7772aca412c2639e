"""Cold start of the Cloud Function: time to import `functions/main.py` in a fresh interpreter.

Runs several fresh subprocesses and prints the median (and every run) with the 400 ms target
of DESIGN.md §7, and which heavy client modules the import pulled in (should be none).
Usage: python bench/coldstart.py [--json] [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

TARGET_MS = 400.0
HEAVY = ("google.cloud.iot_v1", "google.api_core", "grpc", "google.protobuf", "proto",
         "requests", "clearblade.cloud.iot_v1", "cryptography.x509")
MAIN = Path(__file__).resolve().parent.parent / "functions" / "main.py"

_PROBE = """
import importlib.util, json, sys, time
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("main", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = (time.perf_counter() - t0) * 1000
heavy = [m for m in sys.argv[2:] if m in sys.modules]
print(json.dumps({"ms": elapsed, "heavy": heavy}))
"""


def measure_once(python: str = sys.executable) -> tuple[float, list[str]]:
    """One fresh interpreter importing functions/main.py, with no configuration in its
    environment: the milliseconds it took and the heavy modules it loaded."""
    env = {"PATH": "/usr/bin:/bin"}
    # Its own session, and its group killed on the way out, whatever happened (a timeout, ^C).
    child = subprocess.Popen([python, "-c", _PROBE, str(MAIN), *HEAVY], env=env, text=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = child.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, child.args, out, err)
    result = json.loads(out.strip().splitlines()[-1])
    return float(result["ms"]), [str(m) for m in result["heavy"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--runs", type=int, default=7, help="measured imports (default 7)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    measure_once()  # warm the OS file cache and write .pyc files, as a deployed image has them
    runs = [measure_once() for _ in range(args.runs)]
    times = [ms for ms, _ in runs]
    heavy = sorted({m for _, loaded in runs for m in loaded})
    median = statistics.median(times)
    result = {
        "benchmark": "coldstart",
        "what": "import of functions/main.py in a fresh interpreter",
        "median_ms": round(median, 1),
        "runs_ms": [round(t, 1) for t in times],
        "target_ms": TARGET_MS,
        "within_target": median < TARGET_MS,
        "heavy_modules_imported": heavy,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"cold start: {median:.0f} ms median import of functions/main.py over "
              f"{len(times)} fresh interpreters (target < {TARGET_MS:.0f} ms); heavy client "
              f"modules imported: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
