"""PostgreSQL access shared by the gateway (writer) and analytics_svc (reader).

``DATABASE_URL`` names the server; when it is unset an embedded PostgreSQL (``pgserver``) is started in
``.spoton/pgdata``. Each service migrates only its own tables; the owner of the history makes them TimescaleDB
hypertables when the server can use the extension (created and preloaded), else they stay plain tables. The one
dialect difference (``time_bucket``/``date_bin``) lives here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
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


def timescaledb_installed(conn: psycopg.Connection) -> bool:
    """True when this database has the TimescaleDB extension created (readers use its ``time_bucket``)."""
    return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is not None


def bucket_sql(timescale: bool) -> str:
    """SQL for the time bucket of ``time`` with width ``%(bucket)s`` (an interval) from ``%(origin)s``.

    TimescaleDB's ``time_bucket`` and PostgreSQL's ``date_bin`` give the same buckets for the same origin
    (tests/test_timescale.py compares whole analytics answers on both, compressed chunks included).
    """
    if timescale:
        return "time_bucket(%(bucket)s::interval, time, %(origin)s::timestamptz)"
    return "date_bin(%(bucket)s::interval, time, %(origin)s::timestamptz)"


@dataclass(frozen=True)
class Hypertable:
    """A table its owner turns into a TimescaleDB hypertable on ``time``, compressed per ``segmentby``."""

    table: str
    segmentby: tuple[str, ...]


@dataclass(frozen=True)
class TimescalePlan:
    """What an owner's tables become on TimescaleDB.

    Attributes:
        hypertables: the tables partitioned on their ``time`` column.
        compress_after_days: chunks older than this are compressed (days; 0 = no compression policy).
        retention_days: chunks older than this are dropped by a retention policy (days; 0 = none).
        chunk_days: width of one chunk (days).
    """

    hypertables: tuple[Hypertable, ...]
    compress_after_days: float = 7.0
    retention_days: float = 0.0
    chunk_days: float = 1.0


def create_timescaledb(url: str) -> tuple[str | None, str]:
    """Create the TimescaleDB extension when the server has it *and* can use it (it must be preloaded).

    Tried on a connection of its own inside one transaction, so a server that refuses (``must be preloaded``, a
    FATAL that closes the connection) leaves nothing behind. Returns ``(version, "")`` or ``(None, reason)``.
    """
    try:
        with psycopg.connect(url, connect_timeout=10) as probe:
            if not probe.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone():
                return None, "extension not installed on the server"
            probe.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            probe.execute("SELECT count(*) FROM timescaledb_information.hypertables")
            version = probe.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()[0]
            probe.commit()
            return version, ""
    except psycopg.Error as exc:
        return None, str(exc).strip().splitlines()[0]


def _policy(conn: psycopg.Connection, proc: str, table: str, key: str, days: float) -> None:
    """Make ``table``'s ``proc`` policy (compression or retention) act after ``days`` (0 = no policy)."""
    kind = {"policy_compression": "compression", "policy_retention": "retention"}[proc]
    current = conn.execute(
        f"SELECT (config->>'{key}')::interval = %s * INTERVAL '1 day' FROM timescaledb_information.jobs "
        "WHERE proc_name = %s AND hypertable_schema = current_schema() AND hypertable_name = %s",
        (days, proc, table),
    ).fetchone()
    if current is not None and current[0] and days > 0:
        return
    if current is not None:
        conn.execute(f"SELECT remove_{kind}_policy(%s::regclass, if_exists => TRUE)", (table,))
    if days > 0:
        conn.execute(f"SELECT add_{kind}_policy(%s::regclass, %s * INTERVAL '1 day')", (table, days))


def convert_to_timescale(conn: psycopg.Connection, plan: TimescalePlan) -> None:
    """Hypertables, compression and retention as ``plan`` says; idempotent (run at every start, so a changed
    setting takes effect). No continuous aggregate: the writer's per-minute rollups are aligned to each session's
    media start, and a continuous aggregate's bucket origin must be one constant (see README)."""
    for h in plan.hypertables:
        conn.execute(
            "SELECT create_hypertable(%s::regclass, by_range('time', %s * INTERVAL '1 day'), "
            "if_not_exists => TRUE, migrate_data => TRUE)",
            (h.table, plan.chunk_days),
        )
        segmentby = ", ".join(h.segmentby)
        current = conn.execute(
            "SELECT string_agg(attname, ', ' ORDER BY segmentby_column_index) "
            "FROM timescaledb_information.compression_settings WHERE hypertable_schema = current_schema() "
            "AND hypertable_name = %s AND segmentby_column_index IS NOT NULL",
            (h.table,),
        ).fetchone()[0]
        if plan.compress_after_days > 0 and current != segmentby:
            conn.execute(
                f"ALTER TABLE {h.table} SET (timescaledb.compress, timescaledb.compress_segmentby = '{segmentby}', "
                "timescaledb.compress_orderby = 'time DESC')"
            )
        _policy(conn, "policy_compression", h.table, "compress_after", plan.compress_after_days)
        _policy(conn, "policy_retention", h.table, "drop_after", plan.retention_days)


def apply_migrations(url: str, directory: Path, owner: str, timescale: TimescalePlan | None = None) -> list[str]:
    """Apply ``directory/*.sql`` in name order, once each, recorded in ``schema_migrations``; then, for an owner
    with a ``timescale`` plan, make its tables hypertables when the server can (one log line says which)."""
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
                    conn.execute(path.read_text(encoding="ascii"))
                    conn.execute("INSERT INTO schema_migrations (owner, name) VALUES (%s, %s)", (owner, path.name))
                applied.append(path.name)
            if timescale is not None:
                version, reason = create_timescaledb(url)
                if version:
                    with conn.transaction():
                        convert_to_timescale(conn, timescale)
                    log_event(
                        log,
                        "history storage: TimescaleDB",
                        owner=owner,
                        version=version,
                        hypertables=",".join(h.table for h in timescale.hypertables),
                        compress_after_days=timescale.compress_after_days,
                        retention_days=timescale.retention_days,
                    )
                else:
                    log_event(log, "history storage: plain PostgreSQL", owner=owner, reason=reason)
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(hashtext('spoton-migrations'))")
    if applied:
        log_event(log, "migrations applied", owner=owner, files=",".join(applied))
    return applied
