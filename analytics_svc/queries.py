"""Questions over the history tables. Pure SQL + numpy; no gRPC. Times in Unix ns, floor in metres."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import psycopg

from spoton.bootstrap.errors import NotFoundError
from spoton.db import bucket_sql

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ns_to_dt(ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=ns // 1000)


def dt_to_ns(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(microseconds=1) * 1000


@dataclass(frozen=True)
class Range:
    session_id: str
    start_ns: int = 0
    end_ns: int = 0

    def validate(self) -> None:
        if not self.session_id:
            raise ValueError("session_id is required")
        if self.start_ns < 0 or self.end_ns < 0:
            raise ValueError("times must be non-negative")
        if self.end_ns and self.start_ns and self.end_ns <= self.start_ns:
            raise ValueError("end must be after start")

    def where(self) -> tuple[str, dict]:
        sql = "session_id = %(session_id)s"
        params: dict = {"session_id": self.session_id}
        if self.start_ns:
            sql += " AND time >= %(start)s"
            params["start"] = ns_to_dt(self.start_ns)
        if self.end_ns:
            sql += " AND time < %(end)s"
            params["end"] = ns_to_dt(self.end_ns)
        return sql, params


class HistoryQueries:
    def __init__(self, conn: psycopg.Connection, timescale: bool = False) -> None:
        self.conn = conn
        self.timescale = timescale

    def _media_start(self, session_id: str) -> datetime:
        row = self.conn.execute("SELECT media_start FROM sessions WHERE session_id = %s", (session_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"unknown session {session_id!r}")
        return row[0]

    def occupancy(self, r: Range, bucket_s: float, group_by_camera: bool) -> list[dict]:
        """Per bucket: distinct people and mean people per step (whole floor, or per camera)."""
        r.validate()
        if not (bucket_s > 0):
            raise ValueError("bucket_s must be > 0")
        origin = self._media_start(r.session_id)
        where, params = r.where()
        params |= {"bucket": timedelta(seconds=bucket_s), "origin": origin}
        group = "camera_id" if group_by_camera else "''"
        rows = self.conn.execute(
            f"""
            WITH per_step AS (
                SELECT {bucket_sql(self.timescale)} AS bucket, {group} AS grp, time,
                       count(DISTINCT global_id) AS people
                FROM track_points WHERE {where} AND global_id IS NOT NULL
                GROUP BY 1, 2, 3
            ), distinct_people AS (
                SELECT {bucket_sql(self.timescale)} AS bucket, {group} AS grp, count(DISTINCT global_id) AS people
                FROM track_points WHERE {where} AND global_id IS NOT NULL
                GROUP BY 1, 2
            )
            SELECT d.bucket, d.grp, d.people, avg(p.people)
            FROM distinct_people d JOIN per_step p USING (bucket, grp)
            GROUP BY d.bucket, d.grp, d.people ORDER BY d.bucket, d.grp
            """,
            params,
        ).fetchall()
        return [{"start_ns": dt_to_ns(b), "group": g, "people": int(n), "mean_people": float(m)} for b, g, n, m in rows]

    def trajectories(self, r: Range, global_id: int, simplify_m: float) -> list[dict]:
        """Per person: the floor path (cameras averaged per instant), simplified, with speeds in m/s."""
        r.validate()
        self._media_start(r.session_id)
        where, params = r.where()
        if global_id:
            where += " AND global_id = %(gid)s"
            params["gid"] = global_id
        rows = self.conn.execute(
            f"""
            SELECT global_id, time, avg(floor_x_m), avg(floor_y_m) FROM track_points
            WHERE {where} AND global_id IS NOT NULL AND floor_x_m IS NOT NULL
            GROUP BY global_id, time ORDER BY global_id, time
            """,
            params,
        ).fetchall()
        if global_id and not rows:
            raise NotFoundError(f"no floor positions for global id {global_id} in session {r.session_id!r}")
        out, by_person = [], {}
        for gid, t, x, y in rows:
            by_person.setdefault(gid, []).append((dt_to_ns(t), x, y))
        for gid, pts in by_person.items():
            out.append(simplify_trajectory(gid, np.array(pts, dtype=np.float64), simplify_m or 0.2))
        return out


def simplify_trajectory(global_id: int, pts: np.ndarray, tolerance_m: float) -> dict:
    """(N, 3) rows [t_ns, x_m, y_m] -> Douglas-Peucker polyline (OpenCV) with per-point speed."""
    xy = pts[:, 1:3].astype(np.float32)
    if len(pts) > 2:
        kept = cv2.approxPolyDP(xy.reshape(-1, 1, 2), tolerance_m, closed=False).reshape(-1, 2)
        lookup = {(float(a), float(b)): i for i, (a, b) in enumerate(xy)}
        idx = sorted({lookup[(float(a), float(b))] for a, b in kept} | {0, len(pts) - 1})
    else:
        idx = list(range(len(pts)))
    sel = pts[idx]
    seg = np.linalg.norm(np.diff(pts[:, 1:3], axis=0), axis=1)
    length = float(seg.sum())
    duration_s = float((pts[-1, 0] - pts[0, 0]) / 1e9) if len(pts) > 1 else 0.0
    speeds = [0.0]
    for a, b in itertools.pairwise(sel):
        dt = (b[0] - a[0]) / 1e9
        speeds.append(float(np.linalg.norm(b[1:3] - a[1:3]) / dt) if dt > 0 else 0.0)
    return {
        "global_id": int(global_id),
        "points": [
            {"timestamp_ns": int(p[0]), "x_m": float(p[1]), "y_m": float(p[2]), "speed_mps": s}
            for p, s in zip(sel, speeds, strict=True)
        ],
        "length_m": length,
        "mean_speed_mps": length / duration_s if duration_s > 0 else 0.0,
    }
