"""Per-minute rollups of the history, so queries over long ranges read thousands of rows, not millions (and hourly
heatmap cells, kept in step with the per-minute ones, for day-long heatmaps).

One copy of the SQL, run by the gateway's history writer after each batch (and by benchmarks that load history
directly). Each refresh recomputes whole minutes (aligned to the session's media start) from ``track_points``, so
it is idempotent and late rows are folded in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

ROLLUP_CELL_M = 0.5
MINUTE = timedelta(minutes=1)

_WINDOW = """t.session_id = %(sid)s AND t.time >= %(lo)s AND t.time < %(hi)s"""
REFRESH_SQL = [
    """DELETE FROM presence_1m WHERE session_id = %(sid)s AND minute >= %(lo)s AND minute < %(hi)s""",
    f"""INSERT INTO presence_1m (session_id, minute, global_id, samples)
        SELECT t.session_id, date_bin('1 minute', t.time, %(origin)s), t.global_id, count(DISTINCT t.time)
        FROM track_points t WHERE {_WINDOW} AND t.global_id IS NOT NULL GROUP BY 1, 2, 3""",
    """DELETE FROM steps_1m WHERE session_id = %(sid)s AND minute >= %(lo)s AND minute < %(hi)s""",
    f"""INSERT INTO steps_1m (session_id, minute, steps, points, peak, first_time, last_time)
        SELECT session_id, minute, count(*), sum(points), max(people), min(time), max(time)
        FROM (SELECT t.session_id, date_bin('1 minute', t.time, %(origin)s) AS minute, t.time, count(*) AS points,
                     count(DISTINCT t.global_id) AS people
              FROM track_points t WHERE {_WINDOW} GROUP BY 1, 2, 3) s
        GROUP BY 1, 2""",
    """DELETE FROM presence_zone_1m WHERE session_id = %(sid)s AND minute >= %(lo)s AND minute < %(hi)s""",
    f"""INSERT INTO presence_zone_1m (session_id, minute, zone_id, global_id, samples)
        SELECT t.session_id, date_bin('1 minute', t.time, %(origin)s), z.id, t.global_id, count(DISTINCT t.time)
        FROM track_points t
        JOIN sessions s ON s.session_id = t.session_id
        CROSS JOIN LATERAL (
            SELECT zz->>'id' AS id,
                   (SELECT ('(' || string_agg('(' || (p->>0) || ',' || (p->>1) || ')', ',' ORDER BY n) || ')')::polygon
                    FROM jsonb_array_elements(zz->'polygon') WITH ORDINALITY AS q(p, n)) AS poly
            FROM jsonb_array_elements(coalesce(s.video_set_doc->'zones', '[]')) AS zz
        ) z
        WHERE {_WINDOW} AND t.global_id IS NOT NULL AND t.floor_x_m IS NOT NULL
          AND point(t.floor_x_m, t.floor_y_m) <@ z.poly
        GROUP BY 1, 2, 3, 4""",
    # presence_cells_1h follows presence_cells_1m: take these minutes' old cells out of their hours, put the new in.
    """UPDATE presence_cells_1h h SET samples = h.samples - m.samples
        FROM (SELECT date_bin('1 hour', minute, %(origin)s) AS hour, cx, cy, sum(samples) AS samples
              FROM presence_cells_1m WHERE session_id = %(sid)s AND minute >= %(lo)s AND minute < %(hi)s
              GROUP BY 1, 2, 3) m
        WHERE h.session_id = %(sid)s AND h.hour = m.hour AND h.cx = m.cx AND h.cy = m.cy""",
    """DELETE FROM presence_cells_1m WHERE session_id = %(sid)s AND minute >= %(lo)s AND minute < %(hi)s""",
    f"""INSERT INTO presence_cells_1m (session_id, minute, cx, cy, samples)
        SELECT session_id, minute, floor((x - %(ox)s) / {ROLLUP_CELL_M})::int,
               floor((y - %(oy)s) / {ROLLUP_CELL_M})::int, count(*)
        FROM (SELECT t.session_id, date_bin('1 minute', t.time, %(origin)s) AS minute,
                     avg(t.floor_x_m) AS x, avg(t.floor_y_m) AS y
              FROM track_points t WHERE {_WINDOW} AND t.global_id IS NOT NULL AND t.floor_x_m IS NOT NULL
              GROUP BY t.session_id, minute, t.global_id, t.time) p
        GROUP BY 1, 2, 3, 4""",
    """INSERT INTO presence_cells_1h (session_id, hour, cx, cy, samples)
        SELECT session_id, date_bin('1 hour', minute, %(origin)s), cx, cy, sum(samples)
        FROM presence_cells_1m WHERE session_id = %(sid)s AND minute >= %(lo)s AND minute < %(hi)s
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (session_id, hour, cx, cy) DO UPDATE SET samples = presence_cells_1h.samples + EXCLUDED.samples""",
    """DELETE FROM presence_cells_1h WHERE session_id = %(sid)s AND samples = 0
        AND hour >= date_bin('1 hour', %(lo)s, %(origin)s) AND hour < %(hi)s""",
]


def minute_floor(t: datetime, origin: datetime) -> datetime:
    return origin + (t - origin) // MINUTE * MINUTE


def refresh_params(
    session_id: str, origin: datetime, floor_origin: tuple[float, float], first: datetime, last: datetime
) -> dict:
    """Parameters for REFRESH_SQL covering every minute that [first, last] touches."""
    return {
        "sid": session_id,
        "origin": origin,
        "lo": minute_floor(first, origin),
        "hi": minute_floor(last, origin) + MINUTE,
        "ox": floor_origin[0],
        "oy": floor_origin[1],
    }


def aligned(t_ns: int, origin: datetime) -> bool:
    """True when a range bound (Unix ns; 0 = unbounded) falls on a rollup minute."""
    if not t_ns:
        return True
    return ((t_ns - int(origin.timestamp() * 1e9)) % int(60e9)) == 0
