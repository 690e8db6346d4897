"""PostgreSQL access shared by the gateway (writer) and analytics_svc (reader).

``DATABASE_URL`` names the server; when it is unset an embedded PostgreSQL (``pgserver``) is started in
``.spoton/pgdata``. TimescaleDB is used when the extension is available; the one dialect difference lives here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg

from spoton.bootstrap.logs import log_event

log = logging.getLogger("spoton.db")

DEFAULT_PGDATA = Path(__file__).resolve().parent.parent / ".spoton" / "pgdata"
_EMBEDDED = {}


def embedded_database_url(pgdata: Path = DEFAULT_PGDATA) -> str:
    """Start (or reuse) an embedded PostgreSQL and return its URL."""
    import pgserver

    pgdata.mkdir(parents=True, exist_ok=True)
    if str(pgdata) not in _EMBEDDED:
        _EMBEDDED[str(pgdata)] = pgserver.get_server(str(pgdata), cleanup_mode="stop")
    url = _EMBEDDED[str(pgdata)].get_uri()
    log_event(log, "embedded postgres", url=url)
    return url


def resolve_database_url(configured: str) -> str:
    return configured or embedded_database_url()


def has_timescaledb(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    return row is not None


def bucket_sql(timescale: bool) -> str:
    """SQL for the time bucket of ``time`` with width ``%(bucket)s`` (an interval) from ``%(origin)s``.

    TimescaleDB's ``time_bucket`` and PostgreSQL's ``date_bin`` agree when given the same origin.
    """
    if timescale:  # untested here: no machine in this project has the extension
        return "time_bucket(%(bucket)s::interval, time, %(origin)s::timestamptz)"
    return "date_bin(%(bucket)s::interval, time, %(origin)s::timestamptz)"


def apply_migrations(url: str, directory: Path, owner: str) -> list[str]:
    """Apply ``directory/*.sql`` in name order, once each, recorded in ``schema_migrations``."""
    applied = []
    with psycopg.connect(url, autocommit=True) as conn:
        # One migrator at a time across services and replicas.
        conn.execute("SELECT pg_advisory_lock(hashtext('spoton-migrations'))")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(owner text, name text, applied_at timestamptz DEFAULT now(), PRIMARY KEY (owner, name))"
            )
            done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations WHERE owner = %s", (owner,))}
            for path in sorted(directory.glob("*.sql")):
                if path.name in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute("INSERT INTO schema_migrations (owner, name) VALUES (%s, %s)", (owner, path.name))
                applied.append(path.name)
            if has_timescaledb(conn):  # untested here
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                conn.execute(
                    "SELECT create_hypertable('track_points', 'time', if_not_exists => TRUE, migrate_data => TRUE)"
                )
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('spoton-migrations'))")
    if applied:
        log_event(log, "migrations applied", owner=owner, files=",".join(applied))
    return applied


def enable_timescale(conn: psycopg.Connection, compress_after_days: int = 7, retention_days: int = 0) -> None:
    """TimescaleDB extras for the history (UNTESTED HERE: no machine of this project has the extension).

    Hypertables on ``time``, compression after ``compress_after_days``, optional retention, and a continuous
    aggregate of per-minute presence that occupancy over long ranges can read.
    """
    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    for table in ("track_points", "zone_events"):
        conn.execute(f"SELECT create_hypertable('{table}', 'time', if_not_exists => TRUE, migrate_data => TRUE)")
    conn.execute("ALTER TABLE track_points SET (timescaledb.compress, timescaledb.compress_segmentby = 'session_id')")
    conn.execute(
        "SELECT add_compression_policy('track_points', make_interval(days => %s), if_not_exists => TRUE)",
        (compress_after_days,),
    )
    if retention_days:
        conn.execute(
            "SELECT add_retention_policy('track_points', make_interval(days => %s), if_not_exists => TRUE)",
            (retention_days,),
        )
    conn.execute(
        """CREATE MATERIALIZED VIEW IF NOT EXISTS presence_1m WITH (timescaledb.continuous) AS
           SELECT session_id, time_bucket('1 minute', time) AS minute, global_id, count(*) AS samples
           FROM track_points WHERE global_id IS NOT NULL GROUP BY session_id, minute, global_id WITH NO DATA"""
    )
    conn.execute(
        "SELECT add_continuous_aggregate_policy('presence_1m', start_offset => INTERVAL '1 day', "
        "end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => TRUE)"
    )
