"""Questions over the history tables. Pure SQL + numpy; no gRPC. Times in Unix ns, floor in metres."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import cv2
import numpy as np
import psycopg

from spoton.bootstrap.errors import NotFoundError
from spoton.corrections import follow_merges, merge_pairs
from spoton.db import bucket_sql
from spoton.rollups import ROLLUP_CELL_M, aligned
from spoton.timeutil import dt_to_ns, ns_to_dt

# Export's columns, in order (bbox as x1, y1, x2, y2 pixels; floor in metres).
EXPORT_COLUMNS = (
    "time",
    "camera_id",
    "frame_index",
    "track_id",
    "global_id",
    "confidence",
    "floor_x_m",
    "floor_y_m",
    "x1",
    "y1",
    "x2",
    "y2",
)


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
        """Operators' merge corrections of the session still in effect (reid_svc's ``identity_corrections``; an
        undone merge is left out), chains followed:
        global id -> the id it now belongs to. History rows keep the ids they were written with; reads resolve
        them through this map, so counts, dwell and trajectories reflect the corrections."""
        if self.conn.execute("SELECT to_regclass('identity_corrections')").fetchone()[0] is None:
            return {}
        rows = self.conn.execute(
            "SELECT kind, detail FROM identity_corrections WHERE session_id = %s AND kind IN ('merge', 'undo') "
            "ORDER BY id",
            (session_id,),
        ).fetchall()
        return follow_merges(merge_pairs(rows))

    def _gid(self, session_id: str) -> tuple[str, dict]:
        """SQL for the resolved global id of a row (``global_id`` itself when nothing was merged) and its params."""
        return _gid_sql(self.merges(session_id))

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
        """Seconds each person (merges resolved) spent in each zone: consecutive enter -> exit events of the
        person in the zone, clipped to the range.

        Reads only the events between the earliest enter of the visits that overlap the range start's 10 minutes
        and the latest exit of those that overlap its end's (``zone_visit_bounds``, migration 0010): every visit that
        overlaps the range lies in that window, whole, so the cost follows the range and the visits at its ends,
        not the session's age. A person merged from several ids may pair one id's enter with another's exit, which
        no bound covers: for those ids (the corrections' few), the last event before the window and the first
        after it are looked up too.
        """
        r.validate()
        _, doc = self._session(r.session_id)
        zones = [z["id"] for z in doc.get("zones", [])]
        if zone_id:
            if zone_id not in set(zones) | {ln["id"] for ln in doc.get("lines", [])}:
                raise NotFoundError(f"unknown zone or line {zone_id!r}")
            zones = [zone_id] if zone_id in zones else []
        if not zones:
            return []
        merged = self.merges(r.session_id)
        gid, params = _gid_sql(merged)
        params |= {"session_id": r.session_id, "zones": zones, "merged": sorted(set(merged) | set(merged.values()))}
        window, clip = ["TRUE"], {"lo": "time", "hi": "next_time"}
        if r.start_ns:
            params["start"] = ns_to_dt(r.start_ns)
            params["lo"] = self._visit_bound(r.session_id, params["start"], "least(%(t)s, first_enter)")
            window.append("time >= %(lo)s")
            clip["lo"] = "greatest(time, %(start)s)"
        if r.end_ns:
            params["end"] = ns_to_dt(r.end_ns)
            params["hi"] = self._visit_bound(r.session_id, params["end"], "greatest(%(t)s, last_exit)")
            window.append("time <= %(hi)s")
            clip["hi"] = "least(next_time, %(end)s)"
        edges = ""
        if merged and r.start_ns:
            edges += "UNION ALL " + _DWELL_EDGE.format(cmp="<", bound="lo", order="DESC")
        if merged and r.end_ns:
            edges += "UNION ALL " + _DWELL_EDGE.format(cmp=">", bound="hi", order="ASC")
        lo, hi = clip["lo"], clip["hi"]
        rows = self.conn.execute(
            f"""
            WITH ev AS (
                SELECT time, zone_id, global_id, kind FROM zone_events
                WHERE session_id = %(session_id)s AND zone_id = ANY(%(zones)s) AND kind IN ('enter', 'exit')
                  AND {" AND ".join(window)}
                {edges}
            ), paired AS (
                SELECT {gid} AS person, zone_id, kind, time,
                       lead(kind) OVER w AS next_kind, lead(time) OVER w AS next_time
                FROM ev WINDOW w AS (PARTITION BY {gid}, zone_id ORDER BY time, global_id, kind)
            )
            SELECT person, zone_id, sum(extract(epoch FROM {hi} - {lo}))
            FROM paired WHERE kind = 'enter' AND next_kind = 'exit' AND {hi} > {lo}
            GROUP BY 1, 2 ORDER BY 1, 2
            """,
            params,
        ).fetchall()
        return [{"global_id": int(g), "zone_id": z, "dwell_s": float(s)} for g, z, s in rows]

    def _visit_bound(self, session_id: str, t: datetime, pick: str) -> datetime:
        """``pick`` (SQL over ``%(t)s`` and the bounds row) for the 10-minute bucket of ``t``; ``t`` itself when
        no visit overlaps that bucket."""
        row = self.conn.execute(
            f"SELECT {pick} FROM zone_visit_bounds WHERE session_id = %(sid)s "
            "AND bucket = date_bin('10 minutes', %(t)s, timestamptz '2000-01-01 00:00+00')",
            {"sid": session_id, "t": t},
        ).fetchone()
        return row[0] if row else t

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
            cells = self._rollup_cells(r, origin)
            cells[:, :2] //= round(k)  # 0.5 m cells -> this grid's (floor division, as the raw query's floor)
        else:
            where, params = r.where()
            cells = np.array(
                self.conn.execute(
                    f"""SELECT floor((x - %(ox)s) / %(cell)s)::int, floor((y - %(oy)s) / %(cell)s)::int, count(*)
                        FROM (SELECT avg(floor_x_m) AS x, avg(floor_y_m) AS y FROM track_points
                              WHERE {where} AND global_id IS NOT NULL AND floor_x_m IS NOT NULL
                              GROUP BY global_id, time) p
                        GROUP BY 1, 2""",
                    params | {"ox": ox, "oy": oy, "cell": cell_m},
                ).fetchall(),
                dtype=np.int64,
            ).reshape(-1, 3)
        inside = (cells[:, 0] >= 0) & (cells[:, 0] < cols) & (cells[:, 1] >= 0) & (cells[:, 1] < rows_n)
        if inside.any():
            np.add.at(grid, (cells[inside, 1], cells[inside, 0]), cells[inside, 2] * self._step_seconds(r))
        return {
            "rows": rows_n,
            "cols": cols,
            "cell_m": cell_m,
            "origin_x_m": ox,
            "origin_y_m": oy,
            "seconds": grid.reshape(-1).tolist(),
        }

    def _rollup_cells(self, r: Range, origin: datetime) -> np.ndarray:
        """(n, 3) int64 rows [cx, cy, samples] of the 0.5 m rollup cells over a minute-aligned range: whole hours
        from ``presence_cells_1h``, the minutes before the first and after the last whole hour from
        ``presence_cells_1m``."""
        hour_ns, origin_ns = 3600 * 10**9, dt_to_ns(origin)
        first_hour = origin_ns - (origin_ns - r.start_ns) // hour_ns * hour_ns if r.start_ns else 0  # ceil
        last_hour = origin_ns + (r.end_ns - origin_ns) // hour_ns * hour_ns if r.end_ns else 0  # floor
        parts = [("presence_cells_1h", "hour", Range(r.session_id, first_hour, last_hour))]
        if first_hour and last_hour and first_hour >= last_hour:
            parts = [("presence_cells_1m", "minute", r)]
        else:
            if r.start_ns and r.start_ns < first_hour:
                parts.append(("presence_cells_1m", "minute", Range(r.session_id, r.start_ns, first_hour)))
            if r.end_ns and last_hour < r.end_ns:
                parts.append(("presence_cells_1m", "minute", Range(r.session_id, last_hour, r.end_ns)))
        out = []
        for table, column, part in parts:
            where, params = part.where(column)
            out += self.conn.execute(f"SELECT cx, cy, sum(samples) FROM {table} WHERE {where} GROUP BY 1, 2", params)
        return np.array(out, dtype=np.int64).reshape(-1, 3)

    def _float_rows(self, sql: str, params: dict, ncols: int) -> np.ndarray:
        """(n, ncols) float64 array of a query whose columns are all non-null float8, read by binary COPY straight
        into numpy (no Python object per value)."""
        with self.conn.cursor().copy(f"COPY ({sql}) TO STDOUT (FORMAT binary)", params) as copy:
            data = b"".join(bytes(block) for block in copy)
        # Binary COPY: 11-byte signature, int32 flags, int32 header-extension length, then per row an int16 field
        # count and per field an int32 length and the big-endian value; an int16 -1 ends it.
        start = 19 + int.from_bytes(data[15:19], "big")
        row = np.dtype(
            [("n", ">i2")] + [(f"{k}{i}", t) for i in range(ncols) for k, t in (("len", ">i4"), ("v", ">f8"))]
        )
        body = np.frombuffer(data, dtype=row, count=(len(data) - start - 2) // row.itemsize, offset=start)
        if len(data) != start + 2 + body.nbytes or (body["n"] != ncols).any() or (body["len0"] != 8).any():
            raise RuntimeError("unexpected binary COPY layout")
        return np.stack([body[f"v{i}"].astype(np.float64) for i in range(ncols)], axis=1)

    def _step_seconds(self, r: Range) -> float:
        """Typical time between steps: the median gap between the first 1000 distinct step times of the range (of
        the session when the range holds fewer than two).

        They are looked for in the range's first hour first, and in the whole range only when that hour holds
        fewer (data sparser than one step per 3.6 s): the same times, but on TimescaleDB's compressed chunks,
        where no index gives times in order, a day's range would otherwise sort all of its rows (1.4 s for a
        10 M-point day)."""
        candidates = [r, Range(r.session_id)]
        if r.start_ns and (not r.end_ns or r.end_ns - r.start_ns > 3600 * 10**9):
            candidates.insert(0, Range(r.session_id, r.start_ns, r.start_ns + 3600 * 10**9))
        for i, part in enumerate(candidates):
            where, params = part.where()
            times = self.conn.execute(
                f"SELECT DISTINCT time FROM track_points WHERE {where} ORDER BY 1 LIMIT 1000", params
            ).fetchall()
            if i == 0 and len(candidates) == 3 and len(times) < 1000:
                continue  # the first hour is not enough: the whole range decides
            if len(times) >= 2:
                return float(np.median(np.diff([dt_to_ns(t) for (t,) in times]) / 1e9))
        return 0.0

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

    def export(self, r: Range, fmt: str, rows_per_piece: int = 50_000) -> Iterator[bytes]:
        """Track points of the range (merges resolved) as one CSV or Parquet file, yielded in pieces.

        Rows come from a server-side cursor ``rows_per_piece`` at a time (a CSV piece or a Parquet row group each),
        so memory stays flat however long the range. Joined, the pieces are the file.
        """
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        if fmt not in ("csv", "parquet"):
            raise ValueError(f"unknown export format {fmt!r}")
        r.validate()
        self._session(r.session_id)
        where, params = r.where()
        gid, gid_params = self._gid(r.session_id)
        schema = pa.schema(
            [("time", pa.timestamp("us", tz="UTC")), ("camera_id", pa.string())]
            + [(c, pa.int64()) for c in ("frame_index", "track_id", "global_id")]
            + [("confidence", pa.float32()), ("floor_x_m", pa.float64()), ("floor_y_m", pa.float64())]
            + [(c, pa.float32()) for c in ("x1", "y1", "x2", "y2")]
        )
        sink, writer = _Pieces(), None
        with self.conn.cursor(name="spoton_export") as cur:
            cur.execute(
                f"""SELECT time, camera_id, frame_index, track_id, {gid} AS global_id, confidence, floor_x_m, floor_y_m,
                           bbox[1] AS x1, bbox[2] AS y1, bbox[3] AS x2, bbox[4] AS y2
                    FROM track_points WHERE {where} ORDER BY time, camera_id, track_id""",
                params | gid_params,
            )
            first = True
            while (rows := cur.fetchmany(rows_per_piece)) or first:
                df = pd.DataFrame(rows, columns=list(EXPORT_COLUMNS))
                df["global_id"] = df["global_id"].astype("Int64")
                if fmt == "csv":
                    yield df.to_csv(index=False, header=first).encode()
                else:
                    writer = writer or pq.ParquetWriter(sink, schema)
                    writer.write_table(pa.Table.from_pandas(df, schema=schema, preserve_index=False))
                    yield sink.take()
                first = False
        if writer is not None:
            writer.close()
            yield sink.take()

    def trajectories(self, r: Range, global_id: int, simplify_m: float, max_points: int = 500_000) -> list[dict]:
        """Per person: the floor path (cameras averaged per instant), simplified, with speeds in m/s.

        ``global_id`` 0 means everyone in the range, allowed while the range holds at most ``max_points`` floor
        points (else ValueError: ask for one person or a shorter range).
        """
        r.validate()
        self._media_start(r.session_id)
        where, params = r.where()
        where += " AND global_id IS NOT NULL AND floor_x_m IS NOT NULL"
        gid, gid_params = self._gid(r.session_id)
        params |= gid_params
        if global_id:
            # The ids written that now resolve to this person, so the (session, global_id, time) index serves.
            merged = self.merges(r.session_id)
            params["sources"] = [s for s, d in merged.items() if d == global_id] + (
                [] if global_id in merged else [global_id]
            )
            where += " AND global_id = ANY(%(sources)s)"
        else:
            n = self.conn.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM track_points WHERE {where} LIMIT %(cap)s) s",
                params | {"cap": max_points + 1},
            ).fetchone()[0]
            if n > max_points:
                raise ValueError(
                    f"the range holds more than {max_points} floor points: ask for one global_id or a shorter range"
                )
        # Raw rows (one per camera that placed the person), averaged per person and instant in numpy: cheaper than
        # GROUP BY + ORDER BY in SQL. Epoch seconds as float8 are spaced 0.24 µs apart near 2e9 s, so rounding
        # them to whole microseconds gives the stored time back exactly.
        rows = self._float_rows(
            f"SELECT {gid}::float8, extract(epoch FROM time)::float8, floor_x_m, floor_y_m FROM track_points "
            f"WHERE {where}",
            params,
            4,
        )
        if global_id and not len(rows):
            raise NotFoundError(f"no floor positions for global id {global_id} in session {r.session_id!r}")
        if not len(rows):
            return []
        person, t_us = rows[:, 0].astype(np.int64), np.round(rows[:, 1] * 1e6).astype(np.int64)
        order = np.lexsort((t_us, person))
        person, t_us, xy = person[order], t_us[order], rows[order, 2:]
        first = np.flatnonzero(np.r_[True, (np.diff(person) != 0) | (np.diff(t_us) != 0)])
        counts = np.diff(np.r_[first, len(person)])[:, None]
        person, t_ns, xy = person[first], t_us[first] * 1000, np.add.reduceat(xy, first) / counts
        cuts = np.flatnonzero(np.diff(person)) + 1
        return [
            simplify_trajectory(int(person[a]), t_ns[a:b], xy[a:b], simplify_m or 0.2)
            for a, b in itertools.pairwise([0, *cuts.tolist(), len(person)])
        ]


# Dwell (see ``HistoryQueries.dwell``): per (zone, id written) of merged people, the last enter/exit before the
# window or the first after it, by an index probe on ``zone_events_session_zone_person``.
_DWELL_EDGE = """
    SELECT x.* FROM unnest(%(merged)s::bigint[]) AS m(global_id) CROSS JOIN unnest(%(zones)s::text[]) AS z(zone_id)
    CROSS JOIN LATERAL (
        SELECT e.time, e.zone_id, e.global_id, e.kind FROM zone_events e
        WHERE e.session_id = %(session_id)s AND e.zone_id = z.zone_id AND e.global_id = m.global_id
          AND e.time {cmp} %({bound})s AND e.kind IN ('enter', 'exit')
        ORDER BY e.time {order}, e.kind {order} LIMIT 1
    ) x
"""


def _gid_sql(merged: dict[int, int]) -> tuple[str, dict]:
    """SQL for the resolved global id of a row under ``merged`` (written id -> person) and its params."""
    if not merged:
        return "global_id", {}
    params, whens = {}, []
    for i, (src, dst) in enumerate(sorted(merged.items())):
        params[f"merge_from_{i}"], params[f"merge_into_{i}"] = src, dst
        whens.append(f"WHEN %(merge_from_{i})s THEN %(merge_into_{i})s")
    return f"(CASE global_id {' '.join(whens)} ELSE global_id END)", params


def _polygon_sql(polygon: list[list[float]]) -> str:
    """A ``point <@ polygon`` filter on the floor point (PostgreSQL's built-in geometry; no PostGIS needed)."""
    text = ",".join(f"({float(x)!r},{float(y)!r})" for x, y in polygon)
    return f" AND point(floor_x_m, floor_y_m) <@ polygon '({text})'"


def simplify_trajectory(global_id: int, t_ns: np.ndarray, xy: np.ndarray, tolerance_m: float) -> dict:
    """A path (``t_ns`` (N,) int64 Unix ns, ``xy`` (N, 2) floor metres) -> Douglas-Peucker polyline (OpenCV) with
    per-point speed in m/s."""
    n = len(t_ns)
    if n > 2:
        xy32 = xy.astype(np.float32) + np.float32(0)  # + 0 turns -0.0 into 0.0, so equal points have equal bits
        kept = cv2.approxPolyDP(xy32.reshape(-1, 1, 2), tolerance_m, closed=False).reshape(-1, 2)
        # OpenCV returns points, not indices: map each back to the last input point with the same coordinates.
        keys = xy32.view(np.uint64).ravel()
        uniq, first_from_end = np.unique(keys[::-1], return_index=True)
        last = n - 1 - first_from_end
        found = last[np.searchsorted(uniq, np.ascontiguousarray(kept + np.float32(0)).view(np.uint64).ravel())]
        idx = np.unique(np.concatenate([found, [0, n - 1]]))
    else:
        idx = np.arange(n)
    sel_t, sel_xy = t_ns[idx], xy[idx]
    length = float(np.linalg.norm(np.diff(xy, axis=0), axis=1).sum())
    duration_s = float((t_ns[-1] - t_ns[0]) / 1e9) if n > 1 else 0.0
    dt = np.diff(sel_t) / 1e9
    step = np.linalg.norm(np.diff(sel_xy, axis=0), axis=1)
    speeds = [0.0, *np.where(dt > 0, step / np.where(dt > 0, dt, 1.0), 0.0).tolist()]
    return {
        "global_id": int(global_id),
        "points": [
            {"timestamp_ns": int(t), "x_m": float(x), "y_m": float(y), "speed_mps": v}
            for t, (x, y), v in zip(sel_t.tolist(), sel_xy.tolist(), speeds, strict=True)
        ],
        "length_m": length,
        "mean_speed_mps": length / duration_s if duration_s > 0 else 0.0,
    }


class _Pieces(io.RawIOBase):
    """A write-only file that hands over what was written since the last ``take`` (Parquet streamed in pieces)."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[no-untyped-def]
        self._parts.append(bytes(b))
        self._pos += len(self._parts[-1])
        return len(self._parts[-1])

    def tell(self) -> int:
        return self._pos

    def take(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out
