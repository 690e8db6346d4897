"""Questions over the history tables. Pure SQL + numpy; no gRPC. Times in Unix ns, floor in metres."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

import cv2
import numpy as np
import psycopg

from spoton.bootstrap.errors import NotFoundError
from spoton.db import bucket_sql
from spoton.rollups import ROLLUP_CELL_M, aligned
from spoton.timeutil import dt_to_ns, ns_to_dt


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

    def where(self, column: str = "time") -> tuple[str, dict]:
        """SQL filter and parameters for this session and range over ``column`` (``minute`` on rollups)."""
        sql = "session_id = %(session_id)s"
        params: dict = {"session_id": self.session_id}
        if self.start_ns:
            sql += f" AND {column} >= %(start)s"
            params["start"] = ns_to_dt(self.start_ns)
        if self.end_ns:
            sql += f" AND {column} < %(end)s"
            params["end"] = ns_to_dt(self.end_ns)
        return sql, params


class HistoryQueries:
    """Every question over one session's history; zones and lines come from the session's video set."""

    def __init__(
        self, conn: psycopg.Connection, timescale: bool = False, max_buckets: int = 100_000, use_rollups: bool = True
    ) -> None:
        self.conn = conn
        self.timescale = timescale
        self.max_buckets = max_buckets
        self.use_rollups = use_rollups

    def merges(self, session_id: str) -> dict[int, int]:
        """Operators' merge corrections of the session (reid_svc's ``identity_corrections``), chains followed:
        global id -> the id it now belongs to. History rows keep the ids they were written with; reads resolve
        them through this map, so counts, dwell and trajectories reflect the corrections."""
        if self.conn.execute("SELECT to_regclass('identity_corrections')").fetchone()[0] is None:
            return {}
        rows = self.conn.execute(
            "SELECT (detail->>'from')::bigint, (detail->>'into')::bigint FROM identity_corrections "
            "WHERE session_id = %s AND kind = 'merge' ORDER BY id",
            (session_id,),
        ).fetchall()
        direct = {int(a): int(b) for a, b in rows}
        resolved = {}
        for src in direct:
            dst, seen = direct[src], {src}
            while dst in direct and dst not in seen:
                seen.add(dst)
                dst = direct[dst]
            resolved[src] = dst
        return resolved

    def _gid(self, session_id: str) -> tuple[str, dict]:
        """SQL for the resolved global id of a row (``global_id`` itself when nothing was merged) and its params."""
        merged = self.merges(session_id)
        if not merged:
            return "global_id", {}
        params, whens = {}, []
        for i, (src, dst) in enumerate(sorted(merged.items())):
            params[f"merge_from_{i}"], params[f"merge_into_{i}"] = src, dst
            whens.append(f"WHEN %(merge_from_{i})s THEN %(merge_into_{i})s")
        return f"(CASE global_id {' '.join(whens)} ELSE global_id END)", params

    def _rollup_range(self, r: Range, origin: datetime) -> tuple[str, dict] | None:
        """WHERE clause over the per-minute rollups when they answer this range exactly, else None."""
        if not (self.use_rollups and aligned(r.start_ns, origin) and aligned(r.end_ns, origin)):
            return None
        return r.where("minute")

    def _session(self, session_id: str) -> tuple[datetime, dict]:
        row = self.conn.execute(
            "SELECT media_start, video_set_doc FROM sessions WHERE session_id = %s", (session_id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown session {session_id!r}")
        return row[0], row[1] or {}

    def _media_start(self, session_id: str) -> datetime:
        return self._session(session_id)[0]

    def _span_s(self, r: Range) -> float:
        """Length of the range in seconds, unbounded ends taken from the session's data."""
        where, params = r.where()
        lo, hi = self.conn.execute(f"SELECT min(time), max(time) FROM track_points WHERE {where}", params).fetchone()
        start = ns_to_dt(r.start_ns) if r.start_ns else lo
        end = ns_to_dt(r.end_ns) if r.end_ns else hi
        return 0.0 if start is None or end is None else max((end - start).total_seconds(), 0.0)

    def _zone(self, doc: dict, zone_id: str) -> list[list[float]]:
        for z in doc.get("zones", []):
            if z["id"] == zone_id:
                return z["polygon"]
        raise NotFoundError(f"unknown zone {zone_id!r}")

    def occupancy(self, r: Range, bucket_s: float, group_by: str = "") -> list[dict]:
        """Per bucket: distinct people and mean people per step; for the floor, per camera or per zone."""
        r.validate()
        if not (0 < bucket_s <= 7 * 86400):
            raise ValueError("bucket_s must be in (0, 604800]")
        origin, doc = self._session(r.session_id)
        if self._span_s(r) / bucket_s > self.max_buckets:
            raise ValueError(f"more than {self.max_buckets} buckets: choose a larger bucket_s or a shorter range")
        rollup = self._rollup_range(r, origin)
        if group_by == "zone" and rollup and bucket_s % 60 == 0:
            return self._occupancy_rollup(rollup, bucket_s, origin, zones=True)
        if group_by == "zone":
            out = []
            for z in doc.get("zones", []):
                out += self._occupancy_query(
                    r, bucket_s, origin, "%(zone_id)s::text", _polygon_sql(z["polygon"]), {"zone_id": z["id"]}
                )
            return sorted(out, key=lambda b: (b["start_ns"], b["group"]))
        if group_by == "" and rollup and bucket_s % 60 == 0:
            return self._occupancy_rollup(rollup, bucket_s, origin)
        group = "camera_id" if group_by == "camera" else "''"
        return self._occupancy_query(r, bucket_s, origin, group, "", {})

    def _occupancy_rollup(
        self, rollup: tuple[str, dict], bucket_s: float, origin: datetime, zones: bool = False
    ) -> list[dict]:
        where, params = rollup
        gid, gid_params = self._gid(params["session_id"])
        params = params | gid_params | {"bucket": timedelta(seconds=bucket_s), "origin": origin}
        table, group = ("presence_zone_1m", "zone_id") if zones else ("presence_1m", "''::text")
        rows = self.conn.execute(
            f"""
            WITH p AS (SELECT date_bin(%(bucket)s, minute, %(origin)s) AS b, {group} AS grp,
                              count(DISTINCT {gid}) AS people, sum(samples) AS samples
                       FROM {table} WHERE {where} GROUP BY 1, 2),
                 s AS (SELECT date_bin(%(bucket)s, minute, %(origin)s) AS b, sum(steps) AS steps
                       FROM steps_1m WHERE {where} GROUP BY 1)
            SELECT p.b, p.grp, p.people, p.samples::float / s.steps FROM p JOIN s USING (b) ORDER BY 1, 2
            """,
            params,
        ).fetchall()
        return [{"start_ns": dt_to_ns(b), "group": g, "people": int(n), "mean_people": float(m)} for b, g, n, m in rows]

    def _occupancy_query(
        self, r: Range, bucket_s: float, origin: datetime, group: str, extra: str, extra_params: dict
    ) -> list[dict]:
        range_where, params = r.where()
        gid, gid_params = self._gid(r.session_id)
        params |= {"bucket": timedelta(seconds=bucket_s), "origin": origin, **extra_params, **gid_params}
        where = range_where + " AND global_id IS NOT NULL" + extra
        rows = self.conn.execute(
            f"""
            WITH per_step AS (
                SELECT {bucket_sql(self.timescale)} AS bucket, {group} AS grp, time, count(DISTINCT {gid}) AS n
                FROM track_points WHERE {where} GROUP BY 1, 2, 3
            ), per_bucket AS (
                SELECT {bucket_sql(self.timescale)} AS bucket, {group} AS grp, count(DISTINCT {gid}) AS people
                FROM track_points WHERE {where} GROUP BY 1, 2
            ), steps AS (
                SELECT {bucket_sql(self.timescale)} AS bucket, count(DISTINCT time) AS n
                FROM track_points WHERE {range_where} GROUP BY 1
            )
            SELECT b.bucket, b.grp, b.people, sum(p.n)::float / max(s.n)
            FROM per_bucket b JOIN per_step p USING (bucket, grp) JOIN steps s USING (bucket)
            GROUP BY b.bucket, b.grp, b.people ORDER BY b.bucket, b.grp
            """,
            params,
        ).fetchall()
        return [{"start_ns": dt_to_ns(b), "group": g, "people": int(n), "mean_people": float(m)} for b, g, n, m in rows]

    def people_count(self, r: Range) -> list[int]:
        r.validate()
        origin, _ = self._session(r.session_id)
        rollup = self._rollup_range(r, origin)
        gid, gid_params = self._gid(r.session_id)
        if rollup:
            rows = self.conn.execute(
                f"SELECT DISTINCT {gid} FROM presence_1m WHERE {rollup[0]} ORDER BY 1", rollup[1] | gid_params
            ).fetchall()
            return [int(g) for (g,) in rows]
        where, params = r.where()
        rows = self.conn.execute(
            f"SELECT DISTINCT {gid} FROM track_points WHERE {where} AND global_id IS NOT NULL ORDER BY 1",
            params | gid_params,
        ).fetchall()
        return [int(g) for (g,) in rows]

    def zone_events(self, r: Range, zone_id: str = "", kinds: tuple[str, ...] = ("enter", "exit")) -> list[dict]:
        r.validate()
        _, doc = self._session(r.session_id)
        where, params = r.where()
        if zone_id:
            known = {z["id"] for z in doc.get("zones", [])} | {ln["id"] for ln in doc.get("lines", [])}
            if zone_id not in known:
                raise NotFoundError(f"unknown zone or line {zone_id!r}")
            where += " AND zone_id = %(zone_id)s"
            params["zone_id"] = zone_id
        params["kinds"] = list(kinds)
        rows = self.conn.execute(
            f"SELECT time, zone_id, global_id, kind FROM zone_events WHERE {where} AND kind = ANY(%(kinds)s) "
            "ORDER BY time, zone_id, global_id, kind",
            params,
        ).fetchall()
        merged = self.merges(r.session_id)
        return [
            {"timestamp_ns": dt_to_ns(t), "zone_id": z, "global_id": merged.get(int(g), int(g)), "kind": k}
            for t, z, g, k in rows
        ]

    def dwell(self, r: Range, zone_id: str = "") -> list[dict]:
        """Seconds each person spent in each zone (enter->exit pairs, clipped to the range)."""
        events = self.zone_events(Range(r.session_id), zone_id)
        _, doc = self._session(r.session_id)
        zones = {z["id"] for z in doc.get("zones", [])}
        lo = r.start_ns or -(2**62)
        hi = r.end_ns or 2**62
        open_at: dict[tuple[int, str], int] = {}
        total: dict[tuple[int, str], float] = {}
        for e in events:
            if e["zone_id"] not in zones:
                continue
            key = (e["global_id"], e["zone_id"])
            if e["kind"] == "enter":
                open_at[key] = e["timestamp_ns"]
            elif key in open_at:
                a, b = max(open_at.pop(key), lo), min(e["timestamp_ns"], hi)
                if b > a:
                    total[key] = total.get(key, 0.0) + (b - a) / 1e9
        return [{"global_id": g, "zone_id": z, "dwell_s": s} for (g, z), s in sorted(total.items())]

    def line_crossings(self, r: Range, line_id: str = "") -> list[dict]:
        _, doc = self._session(r.session_id)
        lines = [ln["id"] for ln in doc.get("lines", [])]
        if line_id and line_id not in lines:
            raise NotFoundError(f"unknown line {line_id!r}")
        events = self.zone_events(r, line_id, ("cross_forward", "cross_backward"))
        out = []
        for lid in [line_id] if line_id else lines:
            fwd = sum(1 for e in events if e["zone_id"] == lid and e["kind"] == "cross_forward")
            bwd = sum(1 for e in events if e["zone_id"] == lid and e["kind"] == "cross_backward")
            out.append({"line_id": lid, "forward": fwd, "backward": bwd})
        return out

    def heatmap(self, r: Range, cell_m: float, max_cells: int = 1_000_000) -> dict:
        """Presence-seconds per floor cell: each person counts once per step (cameras averaged)."""
        r.validate()
        if not (cell_m > 0):
            raise ValueError("cell_m must be > 0")
        origin, doc = self._session(r.session_id)
        floor = doc.get("floor") or {}
        ox, oy = floor.get("origin_m", [0.0, 0.0])
        cols, rows_n = int(np.ceil(floor.get("width_m", 0) / cell_m)), int(np.ceil(floor.get("height_m", 0) / cell_m))
        if cols * rows_n == 0 or cols * rows_n > max_cells:
            raise ValueError(f"a {cell_m} m grid over this floor has {cols * rows_n} cells (1..{max_cells})")
        grid = np.zeros((rows_n, cols))
        k = cell_m / ROLLUP_CELL_M
        rollup = self._rollup_range(r, origin)
        if rollup and abs(k - round(k)) < 1e-9:
            cells = self.conn.execute(
                f"""SELECT floor(cx::numeric / %(k)s)::int, floor(cy::numeric / %(k)s)::int, sum(samples)
                    FROM presence_cells_1m WHERE {rollup[0]} GROUP BY 1, 2""",
                rollup[1] | {"k": round(k)},
            ).fetchall()
        else:
            where, params = r.where()
            cells = self.conn.execute(
                f"""SELECT floor((x - %(ox)s) / %(cell)s)::int, floor((y - %(oy)s) / %(cell)s)::int, count(*)
                    FROM (SELECT avg(floor_x_m) AS x, avg(floor_y_m) AS y FROM track_points
                          WHERE {where} AND global_id IS NOT NULL AND floor_x_m IS NOT NULL
                          GROUP BY global_id, time) p
                    GROUP BY 1, 2""",
                params | {"ox": ox, "oy": oy, "cell": cell_m},
            ).fetchall()
        dt = self._step_seconds(r.session_id) if cells else 0.0
        for c, rr, n in cells:
            if 0 <= c < cols and 0 <= rr < rows_n:
                grid[rr, c] += float(n) * dt
        return {
            "rows": rows_n,
            "cols": cols,
            "cell_m": cell_m,
            "origin_x_m": ox,
            "origin_y_m": oy,
            "seconds": grid.reshape(-1).tolist(),
        }

    def _step_seconds(self, session_id: str) -> float:
        """Typical time between steps (the median gap between distinct step times)."""
        times = self.conn.execute(
            "SELECT DISTINCT time FROM track_points WHERE session_id = %s ORDER BY 1 LIMIT 1000", (session_id,)
        ).fetchall()
        if len(times) < 2:
            return 0.0
        gaps = np.diff([dt_to_ns(t) for (t,) in times]) / 1e9
        return float(np.median(gaps))

    def summary(self, r: Range) -> dict:
        r.validate()
        origin, _ = self._session(r.session_id)
        rollup = self._rollup_range(r, origin)
        if rollup:
            n, first, last, peak = self.conn.execute(
                "SELECT coalesce(sum(points), 0), min(first_time), max(last_time), coalesce(max(peak), 0) "
                f"FROM steps_1m WHERE {rollup[0]}",
                rollup[1],
            ).fetchone()
            cams = self.conn.execute("SELECT cameras FROM sessions WHERE session_id = %s", (r.session_id,)).fetchone()[
                0
            ]
            cams = cams if n else []
        else:
            where, params = r.where()
            n, first, last, cams = self.conn.execute(
                f"SELECT count(*), min(time), max(time), array_agg(DISTINCT camera_id) FROM track_points WHERE {where}",
                params,
            ).fetchone()
            gid, gid_params = self._gid(r.session_id)
            peak = self.conn.execute(
                f"""SELECT coalesce(max(n), 0) FROM (SELECT count(DISTINCT {gid}) AS n FROM track_points
                    WHERE {where} GROUP BY time) s""",
                params | gid_params,
            ).fetchone()[0]
        dwells = [d["dwell_s"] for d in self.dwell(r)]
        return {
            "people": len(self.people_count(r)),
            "track_points": int(n),
            "first_ns": dt_to_ns(first) if first else 0,
            "last_ns": dt_to_ns(last) if last else 0,
            "peak_occupancy": float(peak),
            "mean_dwell_s": float(np.mean(dwells)) if dwells else 0.0,
            "cameras": sorted(c for c in (cams or []) if c),
        }

    def export(self, r: Range, fmt: str) -> bytes:
        """Track points of the range as CSV or Parquet bytes."""
        import pandas as pd

        r.validate()
        self._session(r.session_id)
        where, params = r.where()
        cur = self.conn.execute(
            f"""SELECT time, camera_id, frame_index, track_id, global_id, bbox, confidence, floor_x_m, floor_y_m
                FROM track_points WHERE {where} ORDER BY time, camera_id, track_id""",
            params,
        )
        df = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
        if len(df):
            df[["x1", "y1", "x2", "y2"]] = pd.DataFrame(df.pop("bbox").tolist(), index=df.index)
        if fmt == "csv":
            return df.to_csv(index=False).encode()
        if fmt == "parquet":
            import io

            buf = io.BytesIO()
            df.to_parquet(buf, index=False)
            return buf.getvalue()
        raise ValueError(f"unknown export format {fmt!r}")

    def trajectories(self, r: Range, global_id: int, simplify_m: float) -> list[dict]:
        """Per person: the floor path (cameras averaged per instant), simplified, with speeds in m/s."""
        r.validate()
        self._media_start(r.session_id)
        where, params = r.where()
        gid, gid_params = self._gid(r.session_id)
        params |= gid_params
        if global_id:
            where += f" AND {gid} = %(gid)s"
            params["gid"] = global_id
        rows = self.conn.execute(
            f"""
            SELECT {gid}, time, avg(floor_x_m), avg(floor_y_m) FROM track_points
            WHERE {where} AND global_id IS NOT NULL AND floor_x_m IS NOT NULL
            GROUP BY 1, time ORDER BY 1, time
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


def _polygon_sql(polygon: list[list[float]]) -> str:
    """A ``point <@ polygon`` filter on the floor point (PostgreSQL's built-in geometry; no PostGIS needed)."""
    text = ",".join(f"({float(x)!r},{float(y)!r})" for x, y in polygon)
    return f" AND point(floor_x_m, floor_y_m) <@ polygon '({text})'"


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
