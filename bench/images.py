"""Container images built and run on this host, without a Docker daemon or a registry: ``python bench/images.py``.

``base``   a Debian bookworm base (debootstrap minbase, ``podman import``) and, on it, from Debian's packages, the
           Python 3.11 base (bench/images/python.Containerfile) and the PostgreSQL 15 and Redis 7 images the smoke
           run uses; skipped for images that exist.
``build``  the six service images from the root Dockerfile, tagged ``REGISTRY/<name>:TAG`` (``-cuda`` with
           TORCH=cuda for detection and reid), exactly the names the Helm chart renders; build time and size of
           each in ``build/images/images.json``.
``smoke``  the six service containers plus PostgreSQL and Redis on one network (read-only root, non-root, no
           capabilities), a demo session through the gateway container (``--steps``, default 50), its WebSocket
           recorded and scored against the demo ground truth, rows counted in PostgreSQL, every container stopped
           and its exit code checked; figures in ``build/images/smoke.json``.
``compose`` ``podman-compose`` (pinned, in its own venv under build/) on compose.yaml as it is, with the images
           above (POSTGRES_IMAGE / REDIS_IMAGE set to the Debian-built ones): ``up``, the same session through its
           gateway on :8000, ``down``; in ``build/images/compose.json``.

The engine is podman where installed, else docker (``ENGINE``). For podman, a ``containers.conf`` under
build/containers (runc, cgroupfs, explicit ulimits: DESIGN §11) is written and used (``CONTAINERS_CONF``). pip
inside a build gets the host's pip configuration (``pip config list``) and CA bundle as build secrets, and the
local directories that configuration names (file:// indexes, find-links) mounted read-only, podman only; none of
them ends up in an image or in the repository. ``API_KEYS`` from the environment is passed to every service and
used by the smoke client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
HERE = REPO / "bench" / "images"
OUT = REPO / "build" / "images"
CONF_DIR = REPO / "build" / "containers"
# Service package -> (image name, dependency extra, needs PyTorch, gRPC port).
SERVICES = {
    "detection_svc": ("detection", "detection", True, 50051),
    "tracking_svc": ("tracking", "tracking", True, 50052),
    "reid_svc": ("reid", "reid", True, 50053),
    "mapping_svc": ("mapping", "mapping", False, 50054),
    "analytics_svc": ("analytics", "analytics", False, 50055),
    "gateway": ("gateway", "gateway", False, 8000),
}
GPU_IMAGES = {"detection", "reid"}
DEBIAN_IMAGE = "localhost/debian:bookworm"
LOCAL_PYTHON_IMAGE = "localhost/spoton-python:3.11-bookworm"
POSTGRES_IMAGE = "localhost/spoton-postgres:15-bookworm"
REDIS_IMAGE = "localhost/spoton-redis:7-bookworm"
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
PODMAN_COMPOSE = "podman-compose==1.6.0"
CONTAINERS_CONF = """\
# Written by bench/images.py (CONTAINERS_CONF): crun and podman's default ulimits are refused on these hosts.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def engine() -> str:
    name = os.environ.get("ENGINE") or ("podman" if shutil.which("podman") else "docker")
    if not shutil.which(name):
        sys.exit(f"no container engine: install podman (apt-get install podman buildah runc) or docker ({name})")
    if name == "podman":
        CONF_DIR.mkdir(parents=True, exist_ok=True)
        conf = CONF_DIR / "containers.conf"
        if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
            conf.write_text(CONTAINERS_CONF)
        os.environ.setdefault("CONTAINERS_CONF", str(conf))
    return name


def sh(*args: str, check: bool = True, capture: bool = False, **kw) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    print("+", " ".join(args), flush=True)
    return subprocess.run(args, check=check, text=True, capture_output=capture, **kw)


def exists(eng: str, image: str) -> bool:
    return subprocess.run([eng, "image", "inspect", image], capture_output=True).returncode == 0


def image_size(eng: str, image: str) -> int:
    out = subprocess.run([eng, "image", "inspect", "--format", "{{.Size}}", image], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


# ---- build inputs from the host (never committed, never in a layer) ---------------------------------------------
def pip_build_config() -> tuple[Path, Path | None, list[str]]:
    """The host's effective pip configuration as one pip.conf (under build/containers), its CA bundle and the local
    directories it names (to mount read-only at the same path)."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True
    ).stdout
    settings: dict[str, str] = {}
    for line in out.splitlines():
        m = re.match(r"^[^.]*\.([\w-]+)='(.*)'$", line.strip())
        if m and m.group(1) not in ("disable-pip-version-check", "no-cache-dir"):
            settings[m.group(1)] = m.group(2)  # later lines (environment) win, as in pip
    ca = settings.pop("cert", None) or os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().cafile
    ca_path = Path(ca) if ca and Path(ca).is_file() else None
    if ca_path:
        settings["cert"] = "/etc/ssl/certs/ca-certificates.crt"  # where the secret is mounted in the build
    mounts: set[str] = set()
    for value in settings.values():
        for token in value.split():
            path = token.removeprefix("file://")
            if path.startswith("/") and Path(path).exists() and not path.startswith("/etc/ssl"):
                top = Path(path) if Path(path).is_dir() else Path(path).parent
                mounts.add(str(top.parent if top.name == "simple" else top))
    CONF_DIR.mkdir(parents=True, exist_ok=True)
    conf = CONF_DIR / "pip.conf"
    conf.write_text("[global]\n" + "".join(f"{k} = {v}\n" for k, v in sorted(settings.items())))
    return conf, ca_path, sorted(mounts)


def build_flags(eng: str) -> list[str]:
    conf, ca, mounts = pip_build_config()
    flags = ["--secret", f"id=pipconf,src={conf}"]
    if ca:
        flags += ["--secret", f"id=cacerts,src={ca}"]
    if eng == "podman":
        for m in mounts:
            flags += ["-v", f"{m}:{m}:ro"]
    elif mounts:
        print(f"note: docker cannot mount {mounts} into a build; pip there sees only network indexes", flush=True)
    return flags


# ---- base images -------------------------------------------------------------------------------------------------
def cmd_base(a: argparse.Namespace) -> None:
    eng = engine()
    if not exists(eng, DEBIAN_IMAGE):
        rootfs = OUT / "rootfs"
        if not (rootfs / "etc" / "debian_version").exists():
            shutil.rmtree(rootfs, ignore_errors=True)
            sh("debootstrap", "--variant=minbase", "bookworm", str(rootfs), DEBIAN_MIRROR)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        sh(eng, "import", "-", DEBIAN_IMAGE, stdin=tar.stdout)
        tar.wait()
        shutil.rmtree(rootfs)
    for image, containerfile in (
        (LOCAL_PYTHON_IMAGE, "python.Containerfile"),
        (POSTGRES_IMAGE, "postgres.Containerfile"),
        (REDIS_IMAGE, "redis.Containerfile"),
    ):
        if not exists(eng, image):
            sh(eng, "build", "-f", str(HERE / containerfile), "--build-arg", f"DEBIAN_IMAGE={DEBIAN_IMAGE}",
               "-t", image, str(HERE))  # fmt: skip
    for image in (DEBIAN_IMAGE, LOCAL_PYTHON_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE):
        print(f"{image}: {image_size(eng, image) / 1e6:.0f} MB")


# ---- service images ----------------------------------------------------------------------------------------------
def image_name(registry: str, name: str, tag: str, torch: str) -> str:
    suffix = "-cuda" if torch == "cuda" and name in GPU_IMAGES else ""
    return f"{registry}/{name}:{tag}{suffix}"


def cmd_build(a: argparse.Namespace) -> None:
    eng = engine()
    if a.python_image == LOCAL_PYTHON_IMAGE and not exists(eng, LOCAL_PYTHON_IMAGE):
        cmd_base(a)
    flags = build_flags(eng)
    results_path = OUT / "images.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for package, (name, extra, needs_torch, _port) in SERVICES.items():
        if a.only and name not in a.only:
            continue
        torch = a.torch if needs_torch else "none"
        tag = image_name(a.registry, name, a.tag, torch)
        t0 = time.perf_counter()
        sh(eng, "build", "-f", str(REPO / "Dockerfile"), *flags,
           "--build-arg", f"PYTHON_IMAGE={a.python_image}", "--build-arg", f"SERVICE={package}",
           "--build-arg", f"EXTRA={extra}", "--build-arg", f"TORCH={torch}", "-t", tag, str(REPO))  # fmt: skip
        seconds = time.perf_counter() - t0
        size_mb = image_size(eng, tag) // 10**6
        results[name] = {"image": tag, "torch": torch, "build_s": round(seconds), "size_mb": size_mb}
        print(json.dumps(results[name]), flush=True)
        OUT.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results, indent=1))
    if eng == "podman":
        sh(eng, "image", "prune", "-f", check=False)  # dangling intermediates
    print(f"{'image':<40} {'TORCH':<6} {'build s':>8} {'MB':>7}")
    for r in results.values():
        print(f"{r['image']:<40} {r['torch']:<6} {r['build_s']:>8} {r['size_mb']:>7}")


# ---- the smoke run -----------------------------------------------------------------------------------------------
LOCKED = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]


def service_env(api_keys: str, service_key: str) -> list[str]:
    env = {
        "SERVICE_KEY": service_key,
        "DATABASE_URL": "postgresql://spoton:spoton@postgres:5432/spoton",
        "REDIS_URL": "redis://redis:6379/0",
        "VIDEO_SETS_DIR": "/etc/spoton/video-sets",
        "API_KEYS": api_keys,
    }
    for package, (name, _e, _t, port) in SERVICES.items():
        if package != "gateway":
            env[f"{name.upper()}_SVC_ADDR"] = f"{name}:{port}"
    return ["--env-file", str(REPO / ".env.cpu")] + [x for k, v in env.items() for x in ("-e", f"{k}={v}")]


def wait_for(what: str, check, timeout_s: float, container: tuple[str, str] | None = None) -> float:  # type: ignore[no-untyped-def]
    """Seconds until ``check()`` holds; fails at once when ``container`` ((engine, name)) has exited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        if check():
            return time.perf_counter() - t0
        if container:
            eng, name = container
            state = subprocess.run([eng, "inspect", "--format", "{{.State.Running}}", name], capture_output=True)
            if state.stdout.strip() != b"true":
                logs = subprocess.run([eng, "logs", "--tail", "30", name], capture_output=True, text=True)
                raise RuntimeError(f"{what} exited before it was ready:\n{logs.stdout}{logs.stderr}")
        time.sleep(1)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s")


def local_keys() -> tuple[str, str]:
    """``API_KEYS`` and ``SERVICE_KEY`` from the environment, each made fresh when unset (auth is on by default),
    and exported so Compose passes them on."""
    import secrets

    api_keys = os.environ.get("API_KEYS") or f"smoke-admin-{secrets.token_hex(12)}:admin"
    service_key = os.environ.get("SERVICE_KEY") or secrets.token_hex(16)
    os.environ.update(API_KEYS=api_keys, SERVICE_KEY=service_key)
    return api_keys, service_key


def drive_session(base_url: str, steps: int, api_keys: str, demo: Path) -> dict:
    """A demo session over the four cameras through the gateway: its WebSocket recorded and scored."""
    import httpx
    import websockets

    from spoton.evaluation import ground_truth_from_mot, score_run

    first = next(iter(k.strip() for k in api_keys.split(",") if k.strip()), "")
    key = first.rsplit(":", 1)[0] if first.rsplit(":", 1)[-1] in ("viewer", "operator", "admin") else first
    headers = {"X-API-Key": key} if key else {}
    cameras = ["cam1", "cam2", "cam3", "cam4"]
    body = {"video_set": "demo", "cameras": cameras, "options": {"max_steps": steps}}
    t0 = time.perf_counter()
    r = httpx.post(f"{base_url}/api/v1/sessions/", json=body, headers=headers, timeout=60)
    r.raise_for_status()
    sid = r.json()["session_id"]
    ws_url = base_url.replace("http://", "ws://") + f"/ws/tracking/{sid}"  # the key goes in a header, never a URL

    async def record() -> list[dict]:
        out = []
        async with websockets.connect(ws_url, max_size=None, additional_headers=headers) as ws:
            async for raw in ws:
                out.append(json.loads(raw))
                if out[-1]["type"] == "session_ended":
                    break
        return out

    messages = asyncio.run(record())
    wall = time.perf_counter() - t0
    summary = httpx.get(f"{base_url}/api/v1/sessions/{sid}", headers=headers, timeout=30).json()
    gt = ground_truth_from_mot({c: demo / "gt" / f"{c}.txt" for c in cameras})
    scores = score_run(gt, messages)
    per_camera = {
        c: {k: round(s[k], 3) for k in ("mota", "idf1", "num_switches", "recall", "precision")}
        for c, s in scores["cameras"].items()
    }
    return {
        "session_id": sid,
        "status": summary["status"],
        "steps": summary["steps"],
        "ws_messages": len(messages),
        "ws_steps": sum(1 for m in messages if m["type"] == "step"),
        "wall_s": round(wall, 1),
        "steps_per_s": round(summary["steps"] / wall, 2),
        "per_camera": per_camera,
        "mean_idf1": round(sum(s["idf1"] for s in per_camera.values()) / len(per_camera), 3),
        "multi_camera": scores.get("multi_camera"),
    }


def count_rows(eng: str, container: str, sid: str) -> dict[str, int]:
    tables = {"sessions": "session_id", "track_points": "session_id", "persons": "session_id",
              "zone_events": "session_id", "calibrations": None, "galleries": "session_id"}  # fmt: skip
    rows = {}
    for table, col in tables.items():
        where = f" WHERE {col} = '{sid}'" if col else ""
        out = subprocess.run(
            [eng, "exec", container, "psql", "-h", "/tmp", "-U", "spoton", "-d", "spoton", "-tAc",
             f"SELECT count(*) FROM {table}{where}"],
            capture_output=True, text=True,
        )  # fmt: skip
        rows[table] = int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip().isdigit() else -1
    return rows


def cmd_smoke(a: argparse.Namespace) -> None:
    eng = engine()
    demo = Path(a.demo).resolve()
    if not (demo / "demo.yaml").exists():
        sys.exit(f"no demo data in {demo}: run `python -m spoton.demo.generate` (make demo-data) first")
    api_keys, service_key = local_keys()
    net, prefix = "spoton-smoke", "spoton-smoke-"
    names = ["postgres", "redis", *(n for n, *_ in SERVICES.values())]
    report: dict = {"engine": eng, "images": {}, "ready_s": {}, "exit_codes": {}}
    sh(eng, "rm", "-f", "-t", "0", *(prefix + n for n in names), check=False, capture=True)
    sh(eng, "network", "rm", "-f", net, check=False, capture=True)
    sh(eng, "volume", "rm", "-f", prefix + "pgdata", check=False, capture=True)
    sh(eng, "network", "create", net)
    started: list[str] = []
    try:

        def run(name: str, image: str, *extra: str) -> None:
            report["images"][name] = image
            sh(eng, "run", "-d", "--name", prefix + name, "--network", net, "--network-alias", name, *LOCKED,
               *extra, image)  # fmt: skip
            started.append(name)

        run("postgres", POSTGRES_IMAGE, "-v", f"{prefix}pgdata:/var/lib/postgresql/data:U")
        run("redis", REDIS_IMAGE)
        pg_ready = [eng, "exec", prefix + "postgres", "pg_isready", "-h", "/tmp", "-U", "spoton"]
        pg_s = wait_for("postgres", lambda: succeeds(pg_ready), 120, (eng, prefix + "postgres"))
        report["ready_s"]["postgres"] = round(pg_s, 1)
        env = service_env(api_keys, service_key)
        mount = ["-v", f"{demo}:/etc/spoton/video-sets:ro"]
        for name, _extra, needs_torch, _port in SERVICES.values():
            image = image_name(a.registry, name, a.tag, a.torch if needs_torch else "none")
            extra = [*env, *(mount if name in ("mapping", "gateway") else [])]
            if name == "gateway":
                extra += ["-p", f"127.0.0.1:{a.port}:8000"]
            run(name, image, *extra)
        t0 = time.perf_counter()
        for name, *_rest, port in SERVICES.values():
            if name == "gateway":
                continue
            probe = [eng, "exec", prefix + name, "python", "-m", "spoton.bootstrap.probe", f"localhost:{port}"]
            wait_for(name, lambda cmd=probe: succeeds(cmd), 600, (eng, prefix + name))
            report["ready_s"][name] = round(time.perf_counter() - t0, 1)
        import httpx

        base = f"http://127.0.0.1:{a.port}"
        healthy = lambda: _ok(lambda: httpx.get(f"{base}/health", timeout=5).status_code == 200)  # noqa: E731
        wait_for("gateway", healthy, 300, (eng, prefix + "gateway"))
        report["ready_s"]["gateway"] = round(time.perf_counter() - t0, 1)
        report["health"] = httpx.get(f"{base}/health", timeout=10).json()
        report["session"] = drive_session(base, a.steps, api_keys, demo)
        report["rows"] = count_rows(eng, prefix + "postgres", report["session"]["session_id"])
        report["users"] = {
            n: subprocess.run([eng, "exec", prefix + n, "id", "-u"], capture_output=True, text=True).stdout.strip()
            for n in started
        }
    finally:
        # Services first (the gateway drains its history writer into PostgreSQL), the databases last.
        for name in reversed(started):
            t0 = time.perf_counter()
            sh(eng, "stop", "-t", "30", prefix + name, check=False, capture=True)
            code = subprocess.run(
                [eng, "inspect", "--format", "{{.State.ExitCode}}", prefix + name], capture_output=True, text=True
            ).stdout.strip()
            report["exit_codes"][name] = {"code": int(code or -1), "stop_s": round(time.perf_counter() - t0, 1)}
            logs = subprocess.run([eng, "logs", prefix + name], capture_output=True, text=True)
            OUT.mkdir(parents=True, exist_ok=True)
            (OUT / f"smoke-{name}.log").write_text(logs.stdout + logs.stderr)
        sh(eng, "rm", "-f", *(prefix + n for n in started), check=False, capture=True)
        sh(eng, "network", "rm", "-f", net, check=False, capture=True)
        sh(eng, "volume", "rm", "-f", prefix + "pgdata", check=False, capture=True)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "smoke.json").write_text(json.dumps(report, indent=1))
        print(json.dumps(report, indent=1))
    clean = all(v["code"] == 0 for v in report["exit_codes"].values())
    if not clean or report.get("session", {}).get("steps") != a.steps:
        sys.exit("smoke run: not every container stopped cleanly or the session fell short (see above)")


def cmd_compose(a: argparse.Namespace) -> None:
    """podman-compose (pinned, its own venv under build/) on compose.yaml as it is: up, the demo session through its
    gateway on :8000, down. Images from ``build``; PostgreSQL and Redis from ``base`` (no registry here)."""
    eng = engine()
    if eng != "podman":
        sys.exit("the compose check is for podman-compose; with docker, `docker compose` runs compose.yaml")
    venv = REPO / "build" / "compose-venv"
    if not (venv / "bin" / "podman-compose").exists():
        sh(sys.executable, "-m", "venv", str(venv))
        sh(str(venv / "bin" / "pip"), "install", "--quiet", PODMAN_COMPOSE)
    os.environ.update(
        POSTGRES_IMAGE=POSTGRES_IMAGE, REDIS_IMAGE=REDIS_IMAGE, REGISTRY=a.registry, IMAGE_TAG=a.tag, TORCH=a.torch
    )
    compose = [str(venv / "bin" / "podman-compose"), "--env-file", ".env.cpu", "-p", "spoton-compose"]
    api_keys, _ = local_keys()  # exported: Compose passes them on
    report: dict = {"podman_compose": PODMAN_COMPOSE}
    t0 = time.perf_counter()
    try:
        up = sh(*compose, "up", "-d", check=False, cwd=REPO)
        report["up_rc"] = up.returncode
        import httpx

        base = "http://127.0.0.1:8000"
        healthy = lambda: _ok(lambda: httpx.get(f"{base}/health", timeout=5).status_code == 200)  # noqa: E731
        report["ready_s"] = round(wait_for("gateway (compose)", healthy, 600), 1)
        report["session"] = drive_session(base, a.steps, api_keys, Path(a.demo).resolve())
    finally:
        ps = sh(eng, "ps", "-a", "--filter", "label=io.podman.compose.project=spoton-compose", "--format",
                "{{.Names}} {{.Status}}", check=False, capture=True)  # fmt: skip
        report["containers"] = ps.stdout.splitlines()
        down = sh(*compose, "down", "-v", "-t", "30", check=False, cwd=REPO)
        report["down_rc"] = down.returncode
        report["wall_s"] = round(time.perf_counter() - t0, 1)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "compose.json").write_text(json.dumps(report, indent=1))
        print(json.dumps(report, indent=1))


def succeeds(cmd: list[str]) -> bool:
    return subprocess.run(cmd, capture_output=True).returncode == 0


def _ok(fn) -> bool:  # type: ignore[no-untyped-def]
    try:
        return bool(fn())
    except Exception:
        return False


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("base", "build", "smoke", "compose"))
    p.add_argument("--registry", default=os.environ.get("REGISTRY", "spoton"), help="image name prefix")
    p.add_argument("--tag", default=os.environ.get("IMAGE_TAG") or version())
    p.add_argument(
        "--torch", default=os.environ.get("IMAGE_TORCH", "pypi"), choices=("cpu", "pypi", "cuda"),
        help="the Dockerfile's TORCH for detection, tracking and reid",
    )  # fmt: skip
    p.add_argument("--python-image", default=os.environ.get("PYTHON_IMAGE") or LOCAL_PYTHON_IMAGE)
    p.add_argument("--only", nargs="*", help="image names to build (default: all six)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--port", type=int, default=18000, help="host port of the gateway container (loopback)")
    p.add_argument("--demo", default=str(REPO / "build" / "demo"), help="the demo video set (mounted read-only)")
    a = p.parse_args()
    {"base": cmd_base, "build": cmd_build, "smoke": cmd_smoke, "compose": cmd_compose}[a.command](a)


if __name__ == "__main__":
    main()
