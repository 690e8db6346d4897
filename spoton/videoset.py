"""Video sets (DESIGN §4): floor plan, cameras, zones and lines, read from YAML in ``VIDEO_SETS_DIR``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from spoton.bootstrap.errors import NotFoundError
from spoton.sourceurl import SourceRefused, check_url, redact_url


@dataclass(frozen=True)
class Floor:
    width_m: float
    height_m: float
    origin_m: tuple[float, float] = (0.0, 0.0)
    image: str | None = None


@dataclass(frozen=True)
class CameraSpec:
    """One camera. ``homography`` (3x3, image px -> floor m) or ``points`` (>= 4 image/floor pairs)."""

    id: str
    source: str
    fps: float | None = None
    homography: list[list[float]] | None = None
    points: list[tuple[tuple[float, float], tuple[float, float]]] = field(default_factory=list)
    foot_offset_px: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class Zone:
    id: str
    polygon: list[tuple[float, float]]


@dataclass(frozen=True)
class Line:
    id: str
    a: tuple[float, float]
    b: tuple[float, float]


RULE_KINDS = ("occupancy_above", "loitering", "wrong_way")


@dataclass(frozen=True)
class Rule:
    """An alert rule of a video set.

    ``occupancy_above``: more than ``threshold`` people in zone ``target``; ``loitering``: one person in zone
    ``target`` for at least ``threshold`` seconds; ``wrong_way``: line ``target`` crossed against ``allowed``
    (``forward`` = from the left of a->b to its right).
    """

    id: str
    kind: str
    target: str
    threshold: float = 0.0
    allowed: str = "forward"


@dataclass(frozen=True)
class VideoSet:
    name: str
    path: Path
    floor: Floor
    cameras: list[CameraSpec]
    zones: list[Zone] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)

    def camera(self, camera_id: str) -> CameraSpec:
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        raise NotFoundError(f"video set {self.name!r} has no camera {camera_id!r}")

    def source_uri(self, camera: CameraSpec) -> str:
        """Absolute path for file sources (relative to the YAML), the URL otherwise."""
        if "://" in camera.source:
            return camera.source
        path = Path(camera.source)
        return str(path if path.is_absolute() else (self.path.parent / path).resolve())

    def to_dict(self) -> dict:
        """The set as JSON for API answers: source credentials shown as ``***`` (stored as given)."""
        return {
            "name": self.name,
            "floor": {
                "width_m": self.floor.width_m,
                "height_m": self.floor.height_m,
                "origin_m": list(self.floor.origin_m),
                "image": self.floor.image,
            },
            "cameras": [
                {"id": c.id, "source": redact_url(c.source), "fps": c.fps, "calibrated": bool(c.homography or c.points)}
                for c in self.cameras
            ],
            "zones": [{"id": z.id, "polygon": [list(p) for p in z.polygon]} for z in self.zones],
            "lines": [{"id": ln.id, "a": list(ln.a), "b": list(ln.b)} for ln in self.lines],
            "rules": [
                {"id": r.id, "kind": r.kind, "target": r.target, "threshold": r.threshold, "allowed": r.allowed}
                for r in self.rules
            ],
        }


def _pair(value: object, what: str) -> tuple[float, float]:
    arr = np.asarray(value, dtype=float).reshape(-1)
    if arr.shape != (2,) or not np.isfinite(arr).all():
        raise ValueError(f"{what} must be two finite numbers, got {value!r}")
    return float(arr[0]), float(arr[1])


def parse_video_set(data: dict, path: Path) -> VideoSet:
    """Validate a YAML mapping into a VideoSet (ValueError with the offending field)."""
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a video set must be a mapping")
    try:
        name = str(data["name"])
        floor_d = data["floor"]
        floor = Floor(
            float(floor_d["width_m"]),
            float(floor_d["height_m"]),
            _pair(floor_d.get("origin_m", (0, 0)), "floor.origin_m"),
            floor_d.get("image"),
        )
        cameras = []
        for c in data["cameras"]:
            h = c.get("homography")
            if h is not None:
                h_arr = np.asarray(h, dtype=float)
                if h_arr.shape != (3, 3) or not np.isfinite(h_arr).all():
                    raise ValueError(f"camera {c.get('id')}: homography must be 3x3 finite numbers")
                h = h_arr.tolist()
            points = [
                (_pair(p["image"], "points.image"), _pair(p["floor"], "points.floor")) for p in c.get("points", [])
            ]
            cameras.append(
                CameraSpec(
                    id=str(c["id"]),
                    source=str(c["source"]),
                    fps=float(c["fps"]) if c.get("fps") else None,
                    homography=h,
                    points=points,
                    foot_offset_px=_pair(c.get("foot_offset_px", (0, 0)), "foot_offset_px"),
                )
            )
        zones = [Zone(str(z["id"]), [_pair(p, "zone point") for p in z["polygon"]]) for z in data.get("zones", [])]
        lines = [
            Line(str(ln["id"]), _pair(ln["a"], "line.a"), _pair(ln["b"], "line.b")) for ln in data.get("lines", [])
        ]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: missing or malformed field {exc}") from exc
    rules = []
    for r in data.get("rules", []) or []:
        try:
            rule = Rule(
                str(r["id"]),
                str(r["kind"]),
                str(r.get("zone") or r.get("line") or r.get("target")),
                float(r.get("max", r.get("seconds", r.get("threshold", 0)))),
                str(r.get("allowed", "forward")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: malformed rule {r!r}: {exc}") from exc
        if rule.kind not in RULE_KINDS:
            raise ValueError(f"{path}: rule {rule.id}: kind must be one of {', '.join(RULE_KINDS)}")
        targets = {ln.id for ln in lines} if rule.kind == "wrong_way" else {z.id for z in zones}
        if rule.target not in targets:
            raise ValueError(
                f"{path}: rule {rule.id}: unknown {'line' if rule.kind == 'wrong_way' else 'zone'} {rule.target!r}"
            )
        if rule.allowed not in ("forward", "backward"):
            raise ValueError(f"{path}: rule {rule.id}: allowed must be forward or backward")
        rules.append(rule)
    if not cameras:
        raise ValueError(f"{path}: a video set needs at least one camera")
    if len({c.id for c in cameras}) != len(cameras):
        raise ValueError(f"{path}: camera ids must be unique")
    return VideoSet(name, path, floor, cameras, zones, lines, rules)


def load_video_set(path: Path) -> VideoSet:
    with open(path) as fh:
        return parse_video_set(yaml.safe_load(fh), path)


class VideoSetCatalog:
    """Every ``*.yaml`` video set in a folder, re-read when asked (files may be regenerated)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def all(self) -> dict[str, VideoSet]:
        sets: dict[str, VideoSet] = {}
        if self.directory.is_dir():
            for path in sorted(self.directory.glob("*.yaml")):
                vs = load_video_set(path)
                sets[vs.name] = vs
        return sets

    def get(self, name: str) -> VideoSet:
        try:
            return self.all()[name]
        except KeyError:
            raise NotFoundError(f"unknown video set {name!r}") from None


def check_sources(vs: VideoSet, settings) -> None:  # type: ignore[no-untyped-def]
    """ValueError unless every camera's source is a file inside one of ``settings.source_dir_list`` or a URL whose
    scheme is in ``settings.source_scheme_list`` (an operator's video set must not read ``/etc/passwd`` or
    ``file:///...``) and whose host is not internal (SSRF; ``settings.source_allow_networks`` opens addresses).
    A host that does not resolve now passes: it is checked again, and refused, when the source is opened."""
    dirs = [os.path.normpath(os.path.abspath(d)) for d in settings.source_dir_list]
    for cam in vs.cameras:
        if "://" in cam.source:
            scheme = cam.source.split("://", 1)[0].lower()
            if scheme not in settings.source_scheme_list:
                raise ValueError(
                    f"camera {cam.id}: source scheme {scheme!r} is not allowed "
                    f"(SOURCE_SCHEMES: {', '.join(settings.source_scheme_list)})"
                )
            try:
                check_url(cam.source, settings.source_allow_networks)
            except SourceRefused as exc:
                raise ValueError(f"camera {cam.id}: {exc}") from None
            except ValueError as exc:
                if "does not resolve" not in str(exc):
                    raise ValueError(f"camera {cam.id}: {exc}") from None
            continue
        # Lexically, not through symlinks: an operator may link media into the directory; a request cannot.
        path = os.path.normpath(os.path.join(os.path.abspath(vs.path.parent), cam.source))
        if not any(path == d or path.startswith(d + os.sep) for d in dirs):
            raise ValueError(f"camera {cam.id}: source {cam.source!r} is outside the allowed directories (SOURCE_DIRS)")
