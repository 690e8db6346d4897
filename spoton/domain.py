"""Domain types shared by every service: one type per concept, numpy inside, protobuf at the edges.

Shapes follow supervision's convention: ``xyxy`` is float32 (N, 4) in image pixels, per-row fields are (N,).
Validation raises ``ValueError`` (servicers turn it into INVALID_ARGUMENT).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from spoton.v1 import common_pb2, mapping_pb2, tracking_pb2


def _check_rows(name: str, arr: np.ndarray, n: int) -> None:
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")


def _check_xyxy(xyxy: np.ndarray) -> None:
    if xyxy.ndim != 2 or xyxy.shape[1] != 4:
        raise ValueError(f"xyxy must have shape (N, 4), got {xyxy.shape}")
    if not np.isfinite(xyxy).all():
        raise ValueError("box coordinates must be finite")
    if len(xyxy) and ((xyxy[:, 2] < xyxy[:, 0]).any() or (xyxy[:, 3] < xyxy[:, 1]).any()):
        raise ValueError("boxes must satisfy x2 >= x1 and y2 >= y1")


def boxes_from_proto(boxes: Iterable[common_pb2.BBox]) -> np.ndarray:
    """Proto boxes -> float32 (N, 4) xyxy, validated."""
    xyxy = np.array([[b.x1, b.y1, b.x2, b.y2] for b in boxes], dtype=np.float32).reshape(-1, 4)
    _check_xyxy(xyxy)
    return xyxy


def boxes_to_proto(xyxy: np.ndarray) -> list[common_pb2.BBox]:
    return [common_pb2.BBox(x1=float(a), y1=float(b), x2=float(c), y2=float(d)) for a, b, c, d in xyxy]


@dataclass(frozen=True)
class Detections:
    """People found in one frame.

    Attributes:
        xyxy: float32 (N, 4) boxes in pixels.
        confidence: float32 (N,) scores in [0, 1].
        class_id: int32 (N,) model class indices (every configured class is a person).
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "xyxy", np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4))
        object.__setattr__(self, "confidence", np.asarray(self.confidence, dtype=np.float32).reshape(-1))
        object.__setattr__(self, "class_id", np.asarray(self.class_id, dtype=np.int32).reshape(-1))
        _check_xyxy(self.xyxy)
        n = len(self.xyxy)
        _check_rows("confidence", self.confidence, n)
        _check_rows("class_id", self.class_id, n)
        if n and not ((self.confidence >= 0) & (self.confidence <= 1)).all():
            raise ValueError("confidence must be in [0, 1]")

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))

    @classmethod
    def from_proto(cls, dets: Sequence[common_pb2.Detection]) -> Detections:
        return cls(
            boxes_from_proto(d.bbox for d in dets),
            np.array([d.confidence for d in dets], np.float32),
            np.array([d.class_id for d in dets], np.int32),
        )

    def to_proto(self) -> list[common_pb2.Detection]:
        return [
            common_pb2.Detection(bbox=b, confidence=float(c), class_id=int(k))
            for b, c, k in zip(boxes_to_proto(self.xyxy), self.confidence, self.class_id, strict=True)
        ]

    def to_boxmot(self) -> np.ndarray:
        """(N, 6) float32 rows ``[x1, y1, x2, y2, conf, cls]``, boxmot's input layout."""
        return np.concatenate([self.xyxy, self.confidence[:, None], self.class_id[:, None].astype(np.float32)], axis=1)

    def __getitem__(self, index: np.ndarray | slice) -> Detections:
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index])


_STATE_TO_PROTO = {
    0: tracking_pb2.TRACK_STATE_UNSPECIFIED,
    1: tracking_pb2.TRACK_STATE_TENTATIVE,
    2: tracking_pb2.TRACK_STATE_CONFIRMED,
    3: tracking_pb2.TRACK_STATE_LOST,
}


FEET_CUT_MARGIN_PX = 2.0


@dataclass(frozen=True)
class Tracks:
    """Tracked people in one frame of one camera.

    Attributes:
        xyxy: float32 (N, 4) boxes in pixels.
        track_id: int64 (N,) per-camera track ids (stable for the life of the stream).
        confidence: float32 (N,).
        class_id: int32 (N,).
        state: int8 (N,) ``tracking_pb2.TrackState`` values.
        age: int32 (N,) frames since birth; hits: int32 (N,) matched frames.
        det_index: int32 (N,) index of the matched detection in the input, -1 if none.
    """

    xyxy: np.ndarray
    track_id: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    state: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    age: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    hits: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    det_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(xyxy)
        object.__setattr__(self, "xyxy", xyxy)
        for name, dtype, default in (
            ("track_id", np.int64, 0),
            ("confidence", np.float32, 0),
            ("class_id", np.int32, 0),
            ("state", np.int8, tracking_pb2.TRACK_STATE_CONFIRMED),
            ("age", np.int32, 0),
            ("hits", np.int32, 0),
            ("det_index", np.int32, -1),
        ):
            arr = np.asarray(getattr(self, name), dtype=dtype).reshape(-1)
            if len(arr) == 0 and n:
                arr = np.full(n, default, dtype)
            _check_rows(name, arr, n)
            object.__setattr__(self, name, arr)
        _check_xyxy(xyxy)

    def __len__(self) -> int:
        return len(self.xyxy)

    def feet_cut(self, height_px: int, margin_px: float = FEET_CUT_MARGIN_PX) -> np.ndarray:
        """bool (N,): the box reaches the frame's bottom edge (within ``margin_px``), so the feet are out of view
        and its foot point, hence its floor point, falls short of where the person stands."""
        return self.xyxy[:, 3] >= height_px - margin_px

    @classmethod
    def empty(cls) -> Tracks:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))

    @classmethod
    def from_proto(cls, tracks: Sequence[tracking_pb2.Track]) -> Tracks:
        return cls(
            boxes_from_proto(t.bbox for t in tracks),
            [t.track_id for t in tracks],
            [t.confidence for t in tracks],
            [t.class_id for t in tracks],
            [t.state for t in tracks],
            [t.age for t in tracks],
            [t.hits for t in tracks],
            [t.det_index for t in tracks],
        )

    def to_proto(self) -> list[tracking_pb2.Track]:
        return [
            tracking_pb2.Track(
                track_id=int(self.track_id[i]),
                bbox=b,
                confidence=float(self.confidence[i]),
                class_id=int(self.class_id[i]),
                state=_STATE_TO_PROTO.get(int(self.state[i]), tracking_pb2.TRACK_STATE_UNSPECIFIED),
                age=int(self.age[i]),
                hits=int(self.hits[i]),
                det_index=int(self.det_index[i]),
            )
            for i, b in enumerate(boxes_to_proto(self.xyxy))
        ]


@dataclass(frozen=True)
class FloorPoints:
    """Points on the floor plan.

    Attributes:
        xy_m: float64 (N, 2) floor coordinates in metres.
        valid: bool (N,); False where the image point is not on the floor (above the horizon).
    """

    xy_m: np.ndarray
    valid: np.ndarray

    def __post_init__(self) -> None:
        xy = np.asarray(self.xy_m, dtype=np.float64).reshape(-1, 2)
        valid = np.asarray(self.valid, dtype=bool).reshape(-1)
        _check_rows("valid", valid, len(xy))
        object.__setattr__(self, "xy_m", xy)
        object.__setattr__(self, "valid", valid)

    def __len__(self) -> int:
        return len(self.xy_m)

    @classmethod
    def from_proto(cls, points: Sequence[mapping_pb2.ProjectedPoint]) -> FloorPoints:
        return cls([[p.floor.x_m, p.floor.y_m] for p in points], [p.valid for p in points])

    def to_proto(self) -> list[mapping_pb2.ProjectedPoint]:
        return [
            mapping_pb2.ProjectedPoint(
                floor=common_pb2.FloorPoint(x_m=float(x), y_m=float(y)) if ok else None, valid=bool(ok)
            )
            for (x, y), ok in zip(self.xy_m, self.valid, strict=True)
        ]


def array_to_tensor(arr: np.ndarray) -> common_pb2.Tensor:
    """Pack a float array as a little-endian float32 Tensor (embeddings travel packed, not repeated)."""
    a = np.ascontiguousarray(arr, dtype="<f4")
    return common_pb2.Tensor(dtype=common_pb2.TENSOR_DTYPE_FLOAT32, shape=list(a.shape), data=a.tobytes())


def tensor_to_array(t: common_pb2.Tensor) -> np.ndarray:
    """Unpack a Tensor to float32 with its declared shape; ValueError when size or dtype disagree."""
    dtypes = {common_pb2.TENSOR_DTYPE_FLOAT32: "<f4", common_pb2.TENSOR_DTYPE_FLOAT16: "<f2"}
    if not t.shape and not t.data:
        return np.zeros((0, 0), np.float32)
    if t.dtype not in dtypes:
        raise ValueError(f"unsupported tensor dtype {t.dtype}")
    shape = tuple(int(s) for s in t.shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"negative tensor dimension in {shape}")
    dt = np.dtype(dtypes[t.dtype])
    expected = int(np.prod(shape)) * dt.itemsize
    if expected != len(t.data):
        raise ValueError(f"tensor of shape {shape} needs {expected} bytes, got {len(t.data)}")
    return np.frombuffer(t.data, dtype=dt).reshape(shape).astype(np.float32)


def tensor_to_rows(t: common_pb2.Tensor, n: int) -> np.ndarray:
    """A Tensor that must hold ``n`` row vectors -> float32 (n, D); (0, 0) when n == 0 and it is empty."""
    arr = tensor_to_array(t)
    if arr.size == 0:
        if n:
            raise ValueError(f"expected {n} rows, got an empty tensor")
        return arr.reshape(0, arr.shape[-1] if arr.ndim == 2 else 0)
    if arr.ndim != 2 or len(arr) != n:
        raise ValueError(f"expected {n} rows, got a tensor of shape {arr.shape}")
    return arr


def l2_normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, 1e-12)
