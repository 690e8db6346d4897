"""The demo: ``python -m spoton.demo.run`` (``make demo``).

Sets up what is missing (weights, the generated demo video set), starts an embedded PostgreSQL (pgserver) unless
``DATABASE_URL`` is set, starts all six services as local processes, starts a session over every demo camera,
prints the dashboard URL, how to log in and progress, and stops everything cleanly on Ctrl-C or when the video ends.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import httpx

from spoton.db import resolve_database_url
from spoton.demo.generate import DEFAULT_OUT, generate
from spoton.launcher import REPO, local_auth, start_stack
from spoton.setup_weights import export_onnx, fetch_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=0, help="generate only the first N frames (0 = all)")
    parser.add_argument("--max-steps", type=int, default=0)
    parser.add_argument("--exit-when-done", action="store_true", help="stop when the session ends")
    args = parser.parse_args()

    fetch_checkpoint()
    export_onnx()
    if not (DEFAULT_OUT / "demo.yaml").exists():
        print("generating the demo video set (about a minute)...")
        generate(DEFAULT_OUT, args.frames)
    database_url = resolve_database_url(os.environ.get("DATABASE_URL", ""))
    # Auth is on (DESIGN section 3): this run's console key (admin, unless API_KEYS is set) and the gateway's key
    # for the stage services. Neither is stored; the next run makes new ones.
    env = local_auth() if not os.environ.get("API_KEYS") else {}
    key = env.get("SPOTON_API_KEY") or os.environ.get("SPOTON_API_KEY", "")
    headers = {"X-API-Key": key} if key else {}
    if not key:
        raise SystemExit("API_KEYS is set: export SPOTON_API_KEY=<an operator or admin key> so the demo can start")
    print("starting services...")
    stack = start_stack(REPO / ".spoton" / "logs", database_url, DEFAULT_OUT, extra_env=env, default_ports=True)
    try:
        r = httpx.post(
            f"{stack.gateway_url}/api/v1/sessions/",
            headers=headers,
            timeout=30,
            json={"video_set": "demo", "options": {"max_steps": args.max_steps}},
        )
        r.raise_for_status()
        sid = r.json()["session_id"]
        print(f"\nSpotOn is running. Dashboard: {stack.gateway_url}/   session: {sid}")
        if key:
            print(f"  log in:    open {stack.gateway_url}/ and paste the admin key {key}")
            print(f"             (CLI: SPOTON_API_KEY={key} spoton sessions; valid for this demo run)")
        print(f"  live JSON: {stack.gateway_url}/api/v1/tracking/{sid}   WebSocket: /ws/tracking/{sid}")
        print(f"  API docs:  {stack.gateway_url}/docs   logs: {stack.log_dir}   Ctrl-C stops everything\n")
        while True:
            time.sleep(2)
            s = httpx.get(f"{stack.gateway_url}/api/v1/sessions/{sid}", headers=headers, timeout=10).json()
            print(
                f"  step {s['steps']:4d}  {s['steps_per_s']:.2f} steps/s  {s['camera_frames_per_s']:.2f} "
                f"camera-frames/s  status {s['status']}  stage ms {json.dumps(s['stage_ms'])}",
                flush=True,
            )
            if s["status"] not in ("starting", "running"):
                if s.get("last_error"):
                    print(f"  last error: {s['last_error']}")
                if args.exit_when_done:
                    break
                print("  the session ended; the dashboard and API stay up until Ctrl-C")
                while True:
                    time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping...")
    except httpx.HTTPError as exc:
        print(f"\nthe gateway stopped answering ({exc}); see {stack.log_dir}/gateway.log")
    finally:
        stack.stop()
        print("stopped.")


if __name__ == "__main__":
    main()
