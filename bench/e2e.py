"""End-to-end speed and accuracy through every service, side by side with the peer: ``python bench/e2e.py``.

Starts the six services as local processes (embedded PostgreSQL unless DATABASE_URL is set) and runs demo
sessions over 1, 2 and 4 cameras (``--cameras``), the 4-camera one again with RAW frames (transport cost), one
session over the original PETS09-S2L1 view (same video and weights as the peer), the 4-camera run under detection
schedules (``--schedules every,fixed:2,fixed:2/detections,motion:4,adaptive:3``: which camera frames are detected
and how the others get their boxes; gateway/schedule.py), the same schedules again for each detector variant
(``--variants openvino:fp32:640x480:bf16,onnx:int8:640x480``: the detector is restarted with each), then stops the
stack and runs the peers, Ultralytics' own ``track`` mode on the same video with the same weights: FP32 ONNX, our
INT8 ONNX and the OpenVINO export (``weights/best_openvino_model``, ``--peer-openvino``). The closing table is
detector (backend, precision) x schedule -> camera-frames/s, CPU per step of each service, each stage's compute
time, per-camera and multi-camera IDF1 and output-box recall per camera, beside both peers of the same run.

Per run: camera-frames/s, step latency p50/p95, each stage's round trip and the service's own compute time (from
its ``spoton_compute_seconds`` histogram; the difference is transport, serialisation and waiting for the CPU),
frame bytes per step, CPU seconds, CPU ms per step (load-independent) and peak RSS per service, and the kit's
scores. Writes ``bench/results/e2e.json``. ``--steps N`` limits each run (0 = the whole video); CI uses short windows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import websockets

from spoton.db import resolve_database_url
from spoton.demo.data import PETS_FPS, PETS_VIEW1_HOMOGRAPHY, gt_path, vtest_path
from spoton.demo.generate import DEFAULT_OUT, generate
from spoton.evaluation import ground_truth_from_mot, score_run
from spoton.launcher import REPO, SERVICES, Stack, local_auth, start_stack, wait_serving

ALL_CAMERAS = ["cam1", "cam2", "cam3", "cam4"]
# Gateway stage name -> (service, method of its compute histogram).
# Processes whose CPU per step the tables show, in this order.
CPU_COLUMNS = ("detection", "reid", "tracking", "mapping", "gateway")
STAGES = {
    "detect": ("detection", "DetectStream"),
    "embed": ("reid", "EmbedStream"),  # tracking embeddings (only for trackers that use them)
    "track": ("tracking", "Track"),
    "identity_embed": ("reid", "EmbedStreamIdentity"),  # identity embeddings of the tracks the budget chose
    "project": ("mapping", "ProjectStream"),
    "associate": ("reid", "Associate"),
}


async def record(url: str, headers: dict[str, str]) -> list[dict]:
    out = []
    async with websockets.connect(url, max_size=None, additional_headers=headers) as ws:
        async for raw in ws:
            out.append(json.loads(raw))
            if out[-1]["type"] == "session_ended":
                return out
    return out


class ResourceSampler:
    """Peak RSS (MiB) and CPU seconds of each service process, sampled every 0.25 s in a thread."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _procs(self) -> dict[str, psutil.Process]:
        out = {}
        for name, p in self.stack.procs.items():
            try:
                out[name] = psutil.Process(p.pid)
            except psutil.NoSuchProcess:
                continue
        return out

    def cpu_seconds(self) -> dict[str, float]:
        out = {}
        for name, proc in self._procs().items():
            try:
                t = proc.cpu_times()
                out[name] = t.user + t.system
            except psutil.NoSuchProcess:
                continue
        return out

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            for name, proc in self._procs().items():
                try:
                    rss = proc.memory_info().rss / 2**20
                except psutil.NoSuchProcess:
                    continue
                self.peak[name] = max(self.peak.get(name, 0.0), rss)

    def start(self) -> ResourceSampler:
        self._thread.start()
        return self

    def reset(self) -> None:
        self.peak = {}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def compute_totals(stack: Stack) -> dict[tuple[str, str], tuple[float, float]]:
    """(service, method) -> (sum seconds, count) of its spoton_compute_seconds histogram."""
    out = {}
    for service in SERVICES:
        text = httpx.get(f"http://127.0.0.1:{stack.metrics_ports[service]}/metrics", timeout=5).text
        for method in {m for s, m in STAGES.values() if s == service}:
            total = re.search(rf'spoton_compute_seconds_sum{{method="{method}"}} (\S+)', text)
            count = re.search(rf'spoton_compute_seconds_count{{method="{method}"}} (\S+)', text)
            out[(service, method)] = (float(total.group(1)) if total else 0.0, float(count.group(1)) if count else 0.0)
    return out


def write_pets_set(directory: Path) -> None:
    """A one-camera video set over the original PETS09-S2L1 view, the video the peer is measured on."""
    link = directory / "pets.avi"
    if not link.exists():
        link.symlink_to(vtest_path())
    doc = {
        "name": "pets",
        "floor": {"width_m": 30.0, "height_m": 26.0, "origin_m": [-21.0, -17.0]},
        "cameras": [
            {"id": "pets", "source": "pets.avi", "fps": PETS_FPS, "homography": PETS_VIEW1_HOMOGRAPHY.tolist()}
        ],
    }
    (directory / "pets.yaml").write_text(json.dumps(doc))


def write_low_overlap_set(directory: Path) -> None:
    """The low-overlap layout (three cameras over disjoint parts of the floor) as video set ``low_overlap`` beside
    the demo, its videos linked in (sources must lie under the video sets directory)."""
    import yaml

    from spoton.demo.generate import LOW_OVERLAP_OUT

    if not (LOW_OVERLAP_OUT / "demo.yaml").exists():
        generate(LOW_OVERLAP_OUT, layout="low_overlap")
    doc = yaml.safe_load((LOW_OVERLAP_OUT / "demo.yaml").read_text())
    doc["name"] = "low_overlap"
    for cam in doc["cameras"]:
        link = directory / f"low_overlap_{cam['source']}"
        if not link.exists():
            link.symlink_to((LOW_OVERLAP_OUT / cam["source"]).resolve())
        cam["source"] = link.name
    (directory / "low_overlap.yaml").write_text(json.dumps(doc))


def restart_reid(stack: Stack, env: dict[str, str]) -> None:
    stack.kill("reid")
    stack.start_service("reid", env=env)
    wait_serving(stack.addr("reid"), lambda: stack._check_alive("reid"))


def identity_options(spec: str) -> dict:
    """``every`` | ``budget[:key=value,...]`` (gateway/identity_embed.py IdentityBudget) -> session options."""
    mode, _, rest = spec.partition(":")
    values: dict = {"mode": mode}
    for kv in filter(None, rest.split(",")):
        k, v = kv.split("=")
        values[k] = int(v) if k == "max_per_step" else float(v)
    return {"identity_embedding": values}


def run_session(
    stack: Stack, sampler: ResourceSampler, video_set: str, cameras: list[str], steps: int, options: dict, gt
) -> dict:  # type: ignore[no-untyped-def]
    before_cpu, before_compute = sampler.cpu_seconds(), compute_totals(stack)
    sampler.reset()
    t0 = time.perf_counter()
    body = {"video_set": video_set, "cameras": cameras, "options": {"max_steps": steps, **options}}
    r = httpx.post(f"{stack.gateway_url}/api/v1/sessions/", json=body, headers=stack.headers, timeout=30)
    r.raise_for_status()
    sid = r.json()["session_id"]
    messages = asyncio.run(record(f"ws://127.0.0.1:{stack.gateway_port}/ws/tracking/{sid}", stack.headers))
    wall = time.perf_counter() - t0
    summary = httpx.get(f"{stack.gateway_url}/api/v1/sessions/{sid}", headers=stack.headers, timeout=10).json()
    after_cpu, after_compute = sampler.cpu_seconds(), compute_totals(stack)
    n = summary["steps"]
    round_trip = {k: summary["stage_ms"].get(k, 0.0) for k in STAGES}
    compute = {}
    for stage, (service, method) in STAGES.items():
        total = after_compute[(service, method)][0] - before_compute[(service, method)][0]
        compute[stage] = round(total * 1000 / max(n, 1), 2)  # ms per step (all cameras)
    outside = sum(round_trip.values()) - sum(compute.values())
    entry = {
        "video_set": video_set,
        "cameras": cameras,
        "options": options,
        "status": summary["status"],
        "steps": n,
        "wall_s": round(wall, 2),
        "steps_per_s": round(n / wall, 3),
        "camera_frames_per_s": round(n * len(cameras) / wall, 2),
        "latency_ms": {"p50": summary["stage_p50_ms"]["latency"], "p95": summary["stage_p95_ms"]["latency"]},
        "decode_encode_ms": summary["stage_ms"]["decode"],
        "round_trip_ms": round_trip,
        "compute_ms": compute,
        "outside_service_ms": round(outside, 2),
        "outside_service_share": round(outside / max(sum(round_trip.values()), 1e-9), 3),
        "frame_bytes_per_step": summary["frame_bytes_per_step"],
        "cpu_s": {k: round(after_cpu.get(k, 0) - before_cpu.get(k, 0), 1) for k in after_cpu},
        # Process CPU time per step (all cameras) of each service: what the run costs, whatever the machine's load.
        "cpu_ms_per_step": {
            k: round((after_cpu.get(k, 0) - before_cpu.get(k, 0)) * 1000 / max(n, 1), 1) for k in after_cpu
        },
        "detection": summary.get("detection", {}),
        "identity_embeddings": summary.get("identity_embeddings", {}),
        "peak_rss_mib": {k: round(v) for k, v in sampler.peak.items()},
        "total_peak_rss_mib": round(sum(sampler.peak.values())),
    }
    if gt is not None:
        scores = score_run({c: gt[c] for c in cameras}, messages)
        entry["per_camera"] = {
            c: {k: round(s[k], 3) for k in ("mota", "idf1", "num_switches", "recall", "precision")}
            for c, s in scores["cameras"].items()
        }
        entry["mean_idf1"] = round(sum(s["idf1"] for s in entry["per_camera"].values()) / len(cameras), 3)
        entry["mean_recall"] = round(sum(s["recall"] for s in entry["per_camera"].values()) / len(cameras), 3)
        if len(cameras) > 1:
            entry["multi_camera"] = scores["multi_camera"]
    print(json.dumps(entry), flush=True)
    return entry


def restart_detector(stack: Stack, env: dict[str, str]) -> None:
    stack.kill("detection")
    stack.start_service("detection", env=env)
    wait_serving(stack.addr("detection"), lambda: stack._check_alive("detection"))


def detector_info(stack: Stack) -> str:
    """What the running detection service loaded: "backend weights [W, H]" (its GetModelInfo)."""
    import grpc

    from spoton.v1 import detection_pb2, detection_pb2_grpc

    key = stack.env.get("SERVICE_KEY", "")
    with grpc.insecure_channel(stack.addr("detection")) as ch:
        stub = detection_pb2_grpc.DetectionServiceStub(ch)
        request = detection_pb2.DetectionServiceGetModelInfoRequest()
        info = stub.GetModelInfo(request, timeout=30, metadata=(("x-api-key", key),) if key else ()).info
    return f"{info.backend} {Path(info.weights_source).name} {list(info.input_size)}"


def variant_env(variant: str) -> dict[str, str]:
    """``[BACKEND:]PRECISION:WxH[:FLOAT]`` -> the detection service's env. FLOAT is OpenVINO's arithmetic, f32 or
    bf16: ``openvino:fp32:640x480:f32`` is what a CPU without VNNI runs (FP32 model, f32 arithmetic)."""
    parts = variant.split(":")
    if not 2 <= len(parts) <= 4:
        raise ValueError(f"bad variant {variant!r}: [BACKEND:]PRECISION:WxH[:FLOAT]")
    if len(parts) == 2:
        parts = ["auto", *parts]
    backend, precision, size, *fp = parts
    env = {"DETECTOR_BACKEND": backend, "DETECTOR_PRECISION": precision, "DETECTOR_INPUT_SIZE": size}
    return env | ({"DETECTOR_OV_PRECISION": fp[0]} if fp else {})


def schedule_options(spec: str) -> dict:
    """``every`` | ``fixed:K`` | ``motion:K[:THRESHOLD]`` | ``adaptive:K``, each optionally ``/kalman``, ``/flow``
    or ``/detections`` (how skipped frames get their boxes) -> the session's schedule options."""
    spec, _, prediction = spec.partition("/")
    if prediction:
        return {**schedule_options(spec), "schedule_prediction": prediction}
    mode, *rest = spec.split(":")
    if mode == "every":
        return {"detection_schedule": "fixed", "detect_every": 1}
    opts: dict = {"detection_schedule": mode, "detect_every": int(rest[0]) if rest else 1}
    if mode == "motion" and len(rest) > 1:
        opts["motion_threshold"] = float(rest[1])
    return opts


def schedule_table(results: dict) -> str:
    """The issue's table: detector (backend, precision) x schedule -> speed, CPU per step of every service, each
    stage's compute time, accuracy on every frame; the peers of the same run below, and each row's speed over
    theirs."""
    peers = [
        (key, label)
        for key, label in (("peer", "FP32 ONNX"), ("peer_int8", "our INT8 ONNX"), ("peer_openvino", "OpenVINO"))
        if results.get(key)
    ]
    lines = [
        "| detector | model loaded | schedule | detected share | camera-frames/s "
        + "".join(f"| x {label} peer " for _, label in peers)
        + "| CPU ms/step total (detection, reid, tracking, mapping, gateway) "
        "| compute ms/step detect / embed / track / project / associate | mean per-camera IDF1 | multi-camera IDF1 "
        "| recall per camera |",
        "|---|---|---|---|---" + "|---" * len(peers) + "|---|---|---|---|---|",
    ]
    for r in results["schedules"]:
        e = r["run"]
        cpu, cp = e["cpu_ms_per_step"], e["compute_ms"]
        rec = "/".join(f"{v['recall']:.3f}" for v in e.get("per_camera", {}).values())
        multi = e.get("multi_camera", {}).get("idf1")
        speed = e["camera_frames_per_s"]
        lines.append(
            f"| {r.get('detector', '')} | {r.get('model', '')} | {r['schedule']}, {e['steps']} steps "
            f"| {e['detection'].get('detected_share', '')} | {speed:.1f} "
            + "".join(f"| {speed / results[key]['frames_per_s']:.2f} " for key, _ in peers)
            + f"| {sum(cpu.values()):.0f} ({', '.join(f'{cpu.get(k, 0):.0f}' for k in CPU_COLUMNS)}) "
            f"| {' / '.join(f'{cp[k]:.0f}' for k in STAGES)} | {e.get('mean_idf1', '')} "
            f"| {'' if multi is None else f'{multi:.3f}'} | {rec} |"
        )
    for key, label in peers:
        p = results[key]
        lines.append(
            f"| peer: Ultralytics track (ByteTrack), {label} | | PETS view, every frame | 1 | {p['frames_per_s']:.1f} "
            + "| " * len(peers)
            + f"| | | {p['idf1']:.3f} (PETS) | | |"
        )
    return "\n".join(lines)


def identity_table(rows: list[dict]) -> str:
    """Identity-embedding budgets side by side: crops and CPU per step, identity accuracy."""
    lines = [
        "| layout | reid | identity | identity crops/step (tracked detections/step) | reid CPU ms/step "
        "| identity embed compute ms/step | multi-camera IDF1 | global ids / people | same-person P / R |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        e = r["run"]
        ie = e.get("identity_embeddings", {})
        m = e.get("multi_camera", {})
        steps = max(e["steps"], 1)
        lines.append(
            f"| {r['layout']} | {r['reid'] or 'default'} | {r['identity']} | {ie.get('embedded', 0) / steps:.2f} "
            f"({ie.get('candidates', 0) / steps:.2f}) | {e['cpu_ms_per_step'].get('reid', 0):.0f} "
            f"| {e['compute_ms'].get('identity_embed', 0):.1f} | {m.get('idf1', float('nan')):.3f} "
            f"| {m.get('global_ids', '')} / {m.get('gt_people', '')} "
            f"| {m.get('same_person_precision') or 0:.3f} / {m.get('same_person_recall') or 0:.3f} |"
        )
    return "\n".join(lines)


def table(results: dict) -> str:
    lines = [
        "| run | camera-frames/s | latency p50 / p95 ms | detect | embed | track | identity embed | project "
        "| associate | outside services | KB/step | peak RSS MiB | mean IDF1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, e in results["runs"].items():
        rt, cp = e["round_trip_ms"], e["compute_ms"]
        stage = " | ".join(f"{rt[k]:.0f} ({cp[k]:.0f})" for k in STAGES)
        lines.append(
            f"| {label} | {e['camera_frames_per_s']:.1f} | {e['latency_ms']['p50']:.0f} / {e['latency_ms']['p95']:.0f}"
            f" | {stage} | {e['outside_service_share']:.0%} | {e['frame_bytes_per_step'] / 1024:.0f}"
            f" | {e['total_peak_rss_mib']} | {e.get('mean_idf1', '')} |"
        )
    for key, label in (("peer", "FP32 ONNX"), ("peer_int8", "our INT8 ONNX"), ("peer_openvino", "OpenVINO")):
        if results.get(key):
            p = results[key]
            lines.append(
                f"| peer: Ultralytics track (ByteTrack), 1 process, {label}, PETS view | {p['frames_per_s']:.1f} "
                f"| | | | | | | | | | | {p['idf1']:.3f} |"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cameras", default="1,2,4", help="camera counts to run")
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--tracker", default="")
    p.add_argument("--raw", action=argparse.BooleanOptionalAction, default=True, help="the RAW-frames run")
    p.add_argument("--pets", action=argparse.BooleanOptionalAction, default=True, help="the PETS-view run")
    p.add_argument("--peer", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument(
        "--peer-openvino",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also the peer on the OpenVINO export weights/best_openvino_model (the informed user's CPU peer)",
    )
    p.add_argument(
        "--peer-int8", action=argparse.BooleanOptionalAction, default=True, help="also the peer on our INT8 ONNX"
    )
    p.add_argument(
        "--schedules",
        default="",
        help="detection schedules for the 4-camera run under each --variants detector, SPEC,... with SPEC every | "
        "fixed:K | motion:K[:THRESHOLD] | adaptive:K (K: period or longest run between detections), optionally "
        "/kalman, /flow or /detections (how skipped frames get their boxes: gateway/schedule.py), e.g. "
        "every,fixed:2/detections,fixed:2/flow,motion:4,adaptive:3",
    )
    p.add_argument(
        "--variants",
        default="",
        help="detectors, each run under every --schedules spec (every frame if none) and on the PETS view (--pets): "
        "default (the stack's own detector; the only one when this is empty) or [BACKEND:]PRECISION:WxH[:FLOAT], "
        "e.g. default,openvino:fp32:640x480:bf16,onnx:int8:640x480; BACKEND auto|onnx|openvino|torch (default "
        "auto), FLOAT OpenVINO's f32|bf16 arithmetic (openvino:fp32:640x480:f32 is the path of CPUs without VNNI)",
    )
    p.add_argument(
        "--variant-steps", type=int, default=0, help="steps of the runs of variants other than default (0 = --steps)"
    )
    p.add_argument(
        "--identity",
        default="",
        help="identity-embedding budgets for 4-camera demo and 3-camera low-overlap runs, SPEC,... with SPEC every | "
        "budget[:every_s=2,max_covered=0.1,...] (gateway/identity_embed.py), e.g. every,budget",
    )
    p.add_argument(
        "--reid-models",
        default="",
        help="REID_MODEL_TYPE values to restart reid with for the --identity runs (default: the configured one)",
    )
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "e2e.json")
    a = p.parse_args()
    if not (DEFAULT_OUT / "demo.yaml").exists():
        generate(DEFAULT_OUT)
    write_pets_set(DEFAULT_OUT)
    db = resolve_database_url(os.environ.get("DATABASE_URL", ""))
    has_gt = gt_path() is not None
    gt = ground_truth_from_mot({c: DEFAULT_OUT / "gt" / f"{c}.txt" for c in ALL_CAMERAS}) if has_gt else None
    pets_gt = ground_truth_from_mot({"pets": gt_path()}, a.steps) if has_gt else None
    options = {"tracker": a.tracker} if a.tracker else {}
    results: dict = {
        "runs": {},
        "curve": [],
        "schedules": [],
        "identity": [],
        "machine": {"cpus": os.cpu_count(), "gpu": False},
    }
    low_gt = None
    if a.identity:
        from spoton.demo.generate import LOW_OVERLAP_OUT

        write_low_overlap_set(DEFAULT_OUT)
        low_cams = [c["id"] for c in json.loads((DEFAULT_OUT / "low_overlap.yaml").read_text())["cameras"]]
        if has_gt:
            low_gt = ground_truth_from_mot({c: LOW_OVERLAP_OUT / "gt" / f"{c}.txt" for c in low_cams})
    stack = start_stack(REPO / ".spoton" / "bench-logs", db, DEFAULT_OUT, extra_env=local_auth())
    sampler = ResourceSampler(stack).start()
    try:
        counts = [int(v) for v in a.cameras.split(",") if v.strip()]
        for n in counts:
            cams = ALL_CAMERAS[:n] if n > 1 else ["cam3"]
            results["runs"][f"{n} camera(s), JPEG"] = run_session(stack, sampler, "demo", cams, a.steps, options, gt)
        if a.raw and counts:
            n = max(counts)
            raw = {**options, "frame_encoding": "raw"}
            results["runs"][f"{n} camera(s), RAW"] = run_session(
                stack, sampler, "demo", ALL_CAMERAS[:n], a.steps, raw, gt
            )
        if a.pets and has_gt:
            results["runs"]["PETS view, 1 camera"] = run_session(
                stack, sampler, "pets", ["pets"], a.steps, options, pets_gt
            )
        for model in filter(None, a.reid_models.split(",")) if a.identity else []:
            restart_reid(stack, {"REID_MODEL_TYPE": model})
            for spec in filter(None, a.identity.split(",")):
                opts = {**options, **identity_options(spec)}
                for layout, cams, truth in (("demo", ALL_CAMERAS, gt), ("low_overlap", low_cams, low_gt)):
                    entry = run_session(stack, sampler, layout, cams, a.steps, opts, truth)
                    results["runs"][f"{layout}, reid {model}, identity {spec}"] = entry
                    results["identity"].append({"reid": model, "identity": spec, "layout": layout, "run": entry})
        if a.identity and not a.reid_models:
            for spec in filter(None, a.identity.split(",")):
                opts = {**options, **identity_options(spec)}
                for layout, cams, truth in (("demo", ALL_CAMERAS, gt), ("low_overlap", low_cams, low_gt)):
                    entry = run_session(stack, sampler, layout, cams, a.steps, opts, truth)
                    results["runs"][f"{layout}, identity {spec}"] = entry
                    results["identity"].append({"reid": "", "identity": spec, "layout": layout, "run": entry})
        schedules = [v for v in a.schedules.split(",") if v.strip()]
        # "default" is the detector the stack started with (DETECTOR_* of this environment, auto by default).
        variants = [v for v in a.variants.split(",") if v.strip()] or (["default"] if schedules else [])
        changed = False
        for variant in variants:
            if variant != "default" or changed:
                restart_detector(stack, {} if variant == "default" else variant_env(variant))
                changed = variant != "default"
            model = detector_info(stack)
            steps = a.steps if variant == "default" else a.variant_steps or a.steps
            for spec in schedules or ["every"]:
                entry = run_session(
                    stack, sampler, "demo", ALL_CAMERAS, steps, {**options, **schedule_options(spec)}, gt
                )
                key = f"4 cameras, schedule {spec}" if variant == "default" else f"4 cameras, {variant}, {spec}"
                results["runs"][key] = entry
                results["schedules"].append({"detector": variant, "model": model, "schedule": spec, "run": entry})
            pets = run_session(stack, sampler, "pets", ["pets"], a.steps, options, pets_gt) if a.pets and has_gt else {}
            results["curve"].append(
                {
                    "detector": variant,
                    "model": model,
                    "camera_frames_per_s": entry["camera_frames_per_s"],
                    "mean_idf1": entry.get("mean_idf1"),
                    "pets_idf1": pets.get("mean_idf1"),
                }
            )
    finally:
        sampler.stop()
        stack.stop()
    if a.peer and has_gt:
        sys.path.insert(0, str(REPO))  # run as a script, bench/ is not a package on the path
        from bench.tracking_eval import peer

        frames = a.steps or 795
        peer_gt = ground_truth_from_mot({"c": gt_path()}, frames)["c"]
        results["peer"] = peer("bytetrack.yaml", frames, peer_gt)
        print(json.dumps(results["peer"]), flush=True)
        if a.peer_int8:
            # The same peer on our INT8 model: what the detector alone is worth, apart from the services.
            results["peer_int8"] = peer("bytetrack.yaml", frames, peer_gt, "best_int8.onnx")
            print(json.dumps(results["peer_int8"]), flush=True)
        if a.peer_openvino:
            # Ultralytics loads the *_openvino_model/ folder itself (its OpenVINO backend, latency hint).
            results["peer_openvino"] = peer("bytetrack.yaml", frames, peer_gt, "best_openvino_model")
            print(json.dumps(results["peer_openvino"]), flush=True)
        # The default 4-camera run: the plain one, else the default detector's every-frame schedule row.
        four = results["runs"].get("4 camera(s), JPEG") or results["runs"].get("4 cameras, schedule every")
        if four:
            results["speedup_vs_peer"] = round(four["camera_frames_per_s"] / results["peer"]["frames_per_s"], 2)
            if results.get("peer_openvino"):
                results["speedup_vs_openvino_peer"] = round(
                    four["camera_frames_per_s"] / results["peer_openvino"]["frames_per_s"], 2
                )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))
    print(table(results))
    if results["schedules"]:
        print(schedule_table(results))
    if results["identity"]:
        print(identity_table(results["identity"]))
    if "speedup_vs_peer" in results:
        print(f"4 cameras through every service: {results['speedup_vs_peer']}x the peer's frames/s")


if __name__ == "__main__":
    main()
