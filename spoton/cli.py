"""``spoton``: a command-line client of the gateway.

    spoton sessions                     list sessions
    spoton start demo [--cameras cam1,cam2] [--max-steps N] [--follow]
    spoton stop SESSION_ID
    spoton follow SESSION_ID [--global-id N] [--events]   a compact live view of the session's WebSocket
    spoton keys list | create [--role viewer|operator|admin] [--name N] | revoke KEY_ID     (admin)

``--url`` (or ``SPOTON_URL``, default http://127.0.0.1:8000) names the gateway; ``--api-key`` (or
``SPOTON_API_KEY``) is sent as ``X-API-Key``. WebSockets get a single-use ticket first (no key in any URL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import TextIO
from urllib.parse import urlencode

import httpx
import websockets


class GatewayError(RuntimeError):
    pass


def _client(args: argparse.Namespace) -> httpx.Client:
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    return httpx.Client(base_url=args.url.rstrip("/"), headers=headers, timeout=30)


def _check(r: httpx.Response) -> dict:
    if r.status_code >= 400:
        try:
            err = r.json()["error"]
            raise GatewayError(f"{r.status_code} {err['code']}: {err['message']}")
        except (ValueError, KeyError, TypeError):
            raise GatewayError(f"{r.status_code}: {r.text[:200]}") from None
    return r.json()


def step_line(message: dict, started: float, steps_seen: int) -> str:
    """One line per step: step number, people per camera, distinct global IDs, live rate."""
    cams = message.get("cameras", {})
    per_cam = " ".join(f"{c}:{len(v['tracks'])}" for c, v in sorted(cams.items()))
    gids = {t["global_id"] for v in cams.values() for t in v["tracks"] if t.get("global_id")}
    rate = steps_seen / max(time.monotonic() - started, 1e-9)
    return (
        f"step {message['step']:>6}  {message['timestamp']}  people {per_cam}  ids {len(gids):>3}  {rate:5.2f} steps/s"
    )


def event_line(message: dict) -> str:
    kind = message.get("type", "?")
    fields = {k: v for k, v in message.items() if k not in ("type", "session_id")}
    return f"{kind:<14} " + " ".join(f"{k}={v}" for k, v in fields.items())


def ws_ticket(args: argparse.Namespace) -> str:
    """A single-use WebSocket ticket for the caller's key (POST /api/v1/auth/ticket)."""
    with _client(args) as client:
        return _check(client.post("/api/v1/auth/ticket"))["ticket"]


async def follow(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    base = args.url.rstrip("/").replace("http://", "ws://").replace("https://", "wss://")
    query: dict = {}
    if args.api_key:
        query["ticket"] = await asyncio.to_thread(ws_ticket, args)
    if getattr(args, "global_id", None) is not None:
        query["global_id"] = args.global_id
    path = "events" if getattr(args, "events", False) else "tracking"
    url = f"{base}/ws/{path}/{args.session_id}" + (f"?{urlencode(query)}" if query else "")
    started, seen = time.monotonic(), 0
    try:
        async with websockets.connect(url, max_size=None) as ws:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "step":
                    seen += 1
                    print(step_line(message, started, seen), file=out, flush=True)
                elif message.get("type") == "session_ended":
                    print(
                        f"session {args.session_id} {message.get('status')} after {message.get('steps')} steps"
                        + (f": {message['error']}" if message.get("error") else ""),
                        file=out,
                        flush=True,
                    )
                    return 0 if message.get("status") in ("finished", "stopped") else 1
                else:
                    print(event_line(message), file=out, flush=True)
    except websockets.exceptions.ConnectionClosedError as exc:
        reason = exc.rcvd.reason if exc.rcvd else str(exc)
        print(f"error: {reason}", file=sys.stderr)
        return 2
    return 0


def keys_command(args: argparse.Namespace, client: httpx.Client) -> int:
    if args.keys_command == "list":
        print(f"{'key id':<14}{'role':<10}{'created':<34}{'revoked':<34}name")
        for k in _check(client.get("/api/v1/auth/keys"))["keys"]:
            print(f"{k['key_id']:<14}{k['role']:<10}{k['created_at']:<34}{k['revoked_at'] or '-':<34}{k['name']}")
        return 0
    if args.keys_command == "create":
        k = _check(client.post("/api/v1/auth/keys", json={"role": args.role, "name": args.name}))
        print(f"{k['key_id']} {k['role']}: {k['key']}   (shown once; store it now)")
        return 0
    k = _check(client.delete(f"/api/v1/auth/keys/{args.key_id}"))
    print(f"{k['key_id']} revoked at {k['revoked_at']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="spoton", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--url", default=os.environ.get("SPOTON_URL", "http://127.0.0.1:8000"))
    p.add_argument("--api-key", default=os.environ.get("SPOTON_API_KEY", ""))
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("sessions", help="list sessions")
    start = sub.add_parser("start", help="start a session over a video set")
    start.add_argument("video_set")
    start.add_argument("--cameras", default="", help="comma-separated camera ids (default: all)")
    start.add_argument("--max-steps", type=int, default=0)
    start.add_argument("--options", default="{}", help="more session options as JSON")
    start.add_argument("--follow", action="store_true", help="then follow it")
    stop = sub.add_parser("stop", help="stop a session")
    stop.add_argument("session_id")
    fol = sub.add_parser("follow", help="follow a session live")
    fol.add_argument("session_id")
    fol.add_argument("--global-id", type=int, default=None, help="only this person (the focus view)")
    fol.add_argument("--events", action="store_true", help="zone events, line crossings and alerts instead")
    keys = sub.add_parser("keys", help="API keys (admin)").add_subparsers(dest="keys_command", required=True)
    keys.add_parser("list", help="stored keys (never the keys themselves)")
    create = keys.add_parser("create", help="a new key, printed once")
    create.add_argument("--role", default="viewer", choices=["viewer", "operator", "admin"])
    create.add_argument("--name", default="")
    revoke = keys.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    args = p.parse_args(argv)
    try:
        with _client(args) as client:
            if args.command == "sessions":
                rows = _check(client.get("/api/v1/sessions/"))["sessions"]
                print(f"{'session':<14}{'video set':<14}{'status':<10}{'steps':>7}{'steps/s':>9}  cameras")
                for s in rows:
                    print(
                        f"{s['session_id']:<14}{s['video_set']:<14}{s['status']:<10}{s['steps']:>7}"
                        f"{s['steps_per_s']:>9.2f}  {','.join(s['cameras'])}"
                    )
                return 0
            if args.command == "start":
                options = json.loads(args.options)
                if args.max_steps:
                    options["max_steps"] = args.max_steps
                body: dict = {"video_set": args.video_set, "options": options}
                if args.cameras:
                    body["cameras"] = args.cameras.split(",")
                s = _check(client.post("/api/v1/sessions/", json=body))
                print(s["session_id"], flush=True)
                if args.follow:
                    args.session_id = s["session_id"]
                    return asyncio.run(follow(args))
                return 0
            if args.command == "keys":
                return keys_command(args, client)
            if args.command == "stop":
                s = _check(client.delete(f"/api/v1/sessions/{args.session_id}"))
                print(f"{s['session_id']} {s['status']} after {s['steps']} steps")
                return 0
            return asyncio.run(follow(args))
    except (GatewayError, httpx.HTTPError, json.JSONDecodeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
