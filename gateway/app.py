"""The gateway's FastAPI app: REST + WebSocket over the pipeline and the services (DESIGN §3)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import cv2
import grpc
import numpy as np
import psycopg
from fastapi import Depends, FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from google.protobuf import json_format
from prometheus_client import make_asgi_app
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import BaseModel, ConfigDict, Field, RootModel
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.clients import ServiceClients
from gateway.config import GatewaySettings
from gateway.history import HistoryWriter
from gateway.live import RedisLive
from gateway.pipeline import Session
from gateway.schema import migrate
from gateway.sources import read_frame
from spoton.bootstrap.errors import NotFoundError
from spoton.bootstrap.logs import configure_logging
from spoton.bootstrap.settings import key_matches
from spoton.db import resolve_database_url
from spoton.floorplan import birdseye, overlay
from spoton.frames import decode_frame
from spoton.v1 import analytics_pb2, common_pb2, detection_pb2, mapping_pb2, reid_pb2
from spoton.videoset import VideoSet, VideoSetCatalog, check_sources, parse_video_set

log = logging.getLogger("gateway")
STATIC = Path(__file__).resolve().parent / "static"


class SessionOptions(BaseModel):
    """Per-session overrides of the gateway's settings; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int = Field(0, ge=0, description="stop after this many steps; 0 = until the sources end")
    target_fps: float = Field(0.0, ge=0, le=120, description="steps per second sampled; 0 = the sources' own rate")
    jpeg_quality: int | None = Field(None, ge=1, le=100)
    loop: bool = Field(False, description="file sources restart at their end (a looping demo, soak tests)")
    always_on: bool = Field(
        False, description="survives a gateway restart: resumed by the next gateway that starts (live sites)"
    )
    frame_encoding: Literal["jpeg", "png", "raw"] = Field("jpeg", description="how frames travel to the stages")
    tracker: str | None = Field(None, description="boxmot tracker (TrackingService.ListTrackers); empty = TRACKER_TYPE")
    tracker_options: dict[str, Any] = Field(default_factory=dict)
    association: dict[str, Any] = Field(default_factory=dict, description="reid association options")
    media_start_ns: int | None = Field(None, ge=0, description="media time of frame 1, ns since the epoch")


class SessionCreate(BaseModel):
    video_set: str = Field(min_length=1)
    cameras: list[str] | None = None
    options: SessionOptions = Field(default_factory=SessionOptions)


class VideoSetDoc(RootModel[dict[str, Any]]):
    """A video set as in the YAML files (DESIGN §4): name, floor, cameras (id, source, fps, homography or points),
    zones, lines, rules."""


class SeekBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frame_index: int | None = Field(None, ge=1, description="1-based source frame")
    seconds: float | None = Field(None, ge=0, description="or a media time from the start, seconds")


class PointPairBody(BaseModel):
    image: tuple[float, float]
    floor: tuple[float, float]


class DistortionBody(BaseModel):
    camera_matrix: list[list[float]] = Field(min_length=3, max_length=3)
    coefficients: list[float]


class CalibrationBody(BaseModel):
    """Either >= 4 point pairs or a 3x3 homography (image px -> floor m)."""

    points: list[PointPairBody] = Field(default_factory=list)
    homography: list[list[float]] | None = None
    distortion: DistortionBody | None = None
    foot_offset_px: tuple[float, float] = (0.0, 0.0)


class FitBody(BaseModel):
    points: list[PointPairBody] = Field(min_length=1)


def _pairs_proto(points: list[PointPairBody]) -> list[mapping_pb2.PointPair]:
    return [
        mapping_pb2.PointPair(
            image=common_pb2.Point2(x=p.image[0], y=p.image[1]),
            floor=common_pb2.FloorPoint(x_m=p.floor[0], y_m=p.floor[1]),
        )
        for p in points
    ]


def calibration_json(cal: mapping_pb2.Calibration) -> dict:
    out = json_format.MessageToDict(cal, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    out["homography"] = [list(cal.homography[i : i + 3]) for i in (0, 3, 6)]
    return out


class MergeBody(BaseModel):
    into: int = Field(gt=0)
    from_: int = Field(gt=0, alias="from")


class SplitBody(BaseModel):
    camera_id: str = Field(min_length=1)
    track_id: int = Field(ge=0)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_body(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


GRPC_TO_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_argument"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "failed_precondition"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "unauthenticated"),
    grpc.StatusCode.UNAVAILABLE: (503, "unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "deadline_exceeded"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "unimplemented"),
}


def parse_time(value: str | None, name: str) -> int:
    """ISO-8601 -> Unix ns (0 when absent)."""
    if not value:
        return 0
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_argument", f"{name} must be ISO-8601, got {value!r}") from None
    if dt.tzinfo is None:
        raise ApiError(400, "invalid_argument", f"{name} needs a timezone (e.g. Z)")
    return int(dt.timestamp() * 1e9)


def time_range(session_id: str = "", start: str | None = None, end: str | None = None) -> analytics_pb2.TimeRange:
    """The session and ISO-8601 range every analytics route takes (a FastAPI dependency)."""
    if not session_id:
        raise ApiError(400, "invalid_argument", "session_id is required")
    return analytics_pb2.TimeRange(
        session_id=session_id, start_ns=parse_time(start, "start"), end_ns=parse_time(end, "end")
    )


Span = Annotated[analytics_pb2.TimeRange, Depends(time_range)]


# Every table keyed by session (deleted on purge), and the time column retention applies to.
PURGE_TABLES = (
    "track_points",
    "zone_events",
    "alerts",
    "persons",
    "presence_1m",
    "steps_1m",
    "presence_cells_1m",
    "presence_zone_1m",
    "sessions",
)
RETENTION_TABLES = (
    ("track_points", "time"),
    ("zone_events", "time"),
    ("alerts", "time"),
    ("presence_1m", "minute"),
    ("steps_1m", "minute"),
    ("presence_cells_1m", "minute"),
    ("presence_zone_1m", "minute"),
)


class Gateway:
    """State the routes share: settings, service clients, the history writer and live sessions."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.catalog = VideoSetCatalog(Path(settings.video_sets_dir))
        self.sessions: dict[str, Session] = {}
        self.clients: ServiceClients | None = None
        self.history: HistoryWriter | None = None
        self.database_url = ""
        self.pool: AsyncConnectionPool | None = None
        self.tasks: set[asyncio.Task] = set()
        self.live: RedisLive | None = None
        self.shutting_down = False

    async def start(self) -> None:
        self.database_url = await asyncio.to_thread(resolve_database_url, self.settings.database_url)
        await asyncio.to_thread(migrate, self.database_url, self.settings)
        # One small pool for the routes' reads and session rows (the history writer keeps its own connection).
        self.pool = AsyncConnectionPool(self.database_url, min_size=1, max_size=4, open=False)
        await self.pool.open()
        self.history = HistoryWriter(
            self.database_url,
            self.settings.history_flush_s,
            self.settings.history_batch_rows,
            self.settings.history_max_pending_rows,
        )
        await self.history.start()
        self.clients = ServiceClients.connect(self.settings)
        if self.settings.redis_url:
            self.live = RedisLive(self.settings.redis_url)
            await self.live.start()
        await self.resume_always_on()
        self.tasks.add(asyncio.create_task(self._heartbeat(), name="session-heartbeat"))
        self.tasks.add(asyncio.create_task(self._retention(), name="history-retention"))

    async def stop(self) -> None:
        self.shutting_down = True
        for task in list(self.tasks):
            if task.get_name() in ("session-heartbeat", "history-retention"):
                task.cancel()
        for s in self.sessions.values():
            await s.stop()
        for task in list(self.tasks):  # the sessions' end records
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)
        if self.history:
            await self.history.close()
        if self.clients:
            await self.clients.close()
        if self.live:
            await self.live.close()
        if self.pool is not None:
            await self.pool.close()

    def session(self, session_id: str) -> Session:
        try:
            return self.sessions[session_id]
        except KeyError:
            raise ApiError(404, "not_found", f"unknown session {session_id!r}") from None

    async def remote_summary(self, session_id: str) -> dict | None:
        """A session another gateway replica runs, as it last published it (None without Redis)."""
        if self.live is None:
            return None
        try:
            return await self.live.summary(session_id)
        except (RedisError, OSError):
            return None

    async def summary(self, session_id: str) -> dict:
        if session_id in self.sessions:
            return self.sessions[session_id].summary()
        remote = await self.remote_summary(session_id)
        if remote is None:
            raise ApiError(404, "not_found", f"unknown session {session_id!r}")
        return remote

    async def video_sets(self) -> dict[str, VideoSet]:
        """YAML files in VIDEO_SETS_DIR, then the sets stored over REST (a file wins a name)."""
        sets = await asyncio.to_thread(self.catalog.all)
        for name, doc in await self.db_query("SELECT name, doc FROM video_sets ORDER BY name", ()):
            if name not in sets:
                with contextlib.suppress(ValueError):
                    sets[name] = parse_video_set(doc, self.catalog.directory / f"{name}.yaml")
        return sets

    async def video_set(self, name: str) -> VideoSet:
        sets = await self.video_sets()
        if name not in sets:
            raise NotFoundError(f"unknown video set {name!r}")
        return sets[name]

    def parse_and_check(self, doc: dict) -> VideoSet:
        """Validate a video set and its sources: files inside SOURCE_DIRS (default VIDEO_SETS_DIR), URLs with an
        allowed scheme only (no ``file://``, no path traversal)."""
        vs = parse_video_set(doc, self.catalog.directory / f"{doc.get('name', 'unnamed')}.yaml")
        check_sources(vs, self.settings)
        return vs

    async def db_query(self, sql: str, params: tuple) -> list[tuple]:
        async with self.pool.connection(timeout=5.0) as conn:
            return await (await conn.execute(sql, params)).fetchall()

    async def record_session(self, s: Session) -> None:
        async with self.pool.connection(timeout=5.0) as conn:
            await conn.execute(
                "INSERT INTO sessions (session_id, video_set, cameras, options, video_set_doc, status, media_start,"
                " heartbeat) VALUES (%s, %s, %s, %s, %s, %s, to_timestamp(%s), now())",
                (
                    s.id,
                    s.video_set.name,
                    s.camera_ids,
                    json.dumps(s.options, default=str),
                    json.dumps(s.video_set.to_dict()),
                    s.status,
                    s.media_start_ns / 1e9,
                ),
            )

    def start_session(self, session: Session) -> None:
        self.sessions[session.id] = session
        session.start()
        self.tasks.add(task := asyncio.create_task(self.finish_session(session), name=f"finish-{session.id}"))
        task.add_done_callback(self.tasks.discard)

    async def resume_always_on(self) -> None:
        """Start again the always-on sessions that no gateway runs any more (their heartbeat is older than
        ``SESSION_HEARTBEAT_S`` × 3, or was cleared by a gateway that shut down cleanly), claimed one by one so
        two gateways starting together do not both take one."""
        stale = self.settings.session_heartbeat_s * 3
        rows = await self.db_query(
            "UPDATE sessions SET heartbeat = now() WHERE session_id IN ("
            " SELECT session_id FROM sessions WHERE status IN ('starting', 'running', 'paused')"
            " AND coalesce((options->>'always_on')::boolean, false)"
            " AND (heartbeat IS NULL OR heartbeat < now() - make_interval(secs => %s))"
            " FOR UPDATE SKIP LOCKED)"
            " RETURNING session_id, video_set, cameras, options, extract(epoch from media_start)",
            (stale,),
        )
        for sid, video_set, cameras, options, media_start in rows:
            try:
                vs = await self.video_set(video_set)
                check_sources(vs, self.settings)
                opts = dict(options) | {"media_start_ns": int(float(media_start) * 1e9)}
                session = Session(
                    vs, list(cameras), opts, self.settings, self.clients, self.history, self.live, session_id=sid
                )
            except (NotFoundError, ValueError) as exc:
                log.warning("cannot resume always-on session %s: %s", sid, exc)
                continue
            log.info("resuming always-on session %s (%s)", sid, video_set)
            self.start_session(session)

    async def purge(self, session_id: str) -> int:
        """Delete everything stored about a session (privacy): history, events, alerts, persons, rollups, the
        session row, and reid's gallery (embeddings never leave reid_svc)."""
        if self.history is not None:
            await self.history.drop_session(session_id)
        deleted = 0
        async with self.pool.connection(timeout=10.0) as conn, conn.transaction():
            for table in PURGE_TABLES:
                cur = await conn.execute(f"DELETE FROM {table} WHERE session_id = %s", (session_id,))
                deleted += cur.rowcount
        try:
            _, reid = await self.clients.reid_for(session_id)
            await reid.ResetGallery(
                reid_pb2.ResetGalleryRequest(session_id=session_id), timeout=10, metadata=self.clients.metadata
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
        return deleted

    async def expire_history(self) -> int:
        """Delete history older than HISTORY_RETENTION_DAYS (0 = keep forever); returns the rows deleted."""
        days = self.settings.history_retention_days
        if days <= 0:
            return 0
        deleted = 0
        async with self.pool.connection(timeout=10.0) as conn, conn.transaction():
            for table, column in RETENTION_TABLES:
                cur = await conn.execute(
                    f"DELETE FROM {table} WHERE {column} < now() - make_interval(secs => %s)", (days * 86400.0,)
                )
                deleted += cur.rowcount
        if deleted:
            log.info("retention: deleted %d rows older than %s days", deleted, days)
        return deleted

    async def _retention(self) -> None:
        while True:
            try:
                await self.expire_history()
            except (psycopg.Error, OSError, PoolTimeout) as exc:
                log.warning("retention pass failed (will retry): %s", exc)
            await asyncio.sleep(self.settings.history_retention_check_s)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.session_heartbeat_s)
            running = [s.id for s in self.sessions.values() if not s.done.is_set()]
            if running:
                with contextlib.suppress(psycopg.Error, OSError, PoolTimeout):
                    await self.db_query(
                        "UPDATE sessions SET heartbeat = now(), status = 'running' "
                        "WHERE session_id = ANY(%s) RETURNING session_id",
                        (running,),
                    )

    async def finish_session(self, s: Session) -> None:
        await s.done.wait()
        if self.shutting_down and s.options.get("always_on"):
            # Left for the next gateway to resume: still running, and nobody's heartbeat.
            with contextlib.suppress(psycopg.Error, OSError, PoolTimeout):
                await self.db_query(
                    "UPDATE sessions SET heartbeat = NULL WHERE session_id = %s RETURNING session_id", (s.id,)
                )
            return
        try:
            async with self.pool.connection(timeout=5.0) as conn:
                await conn.execute(
                    "UPDATE sessions SET status = %s, ended_at = now(), steps = %s, last_error = %s "
                    "WHERE session_id = %s",
                    (s.status, s.steps, s.last_error, s.id),
                )
        except psycopg.Error as exc:
            log.warning("could not record the end of session %s: %s", s.id, exc)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    gw = Gateway(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        await gw.start()
        yield
        await gw.stop()

    app = FastAPI(title="SpotOn gateway", version="0.1.0", lifespan=lifespan)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[o.strip() for o in settings.cors_origins.split(",") if o.strip()],
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.state.gateway = gw
    app.mount("/metrics", make_asgi_app())
    keys = settings.api_key_set

    @app.middleware("http")
    async def require_api_key(request: Request, call_next):  # type: ignore[no-untyped-def]
        """With API_KEYS set, everything but /health, /metrics and the dashboard page needs a key (DESIGN §3)."""
        if keys and not is_open_path(request.url.path) and not has_key(request.headers, request.query_params, keys):
            return error_body(401, "unauthenticated", "missing or invalid API key (X-API-Key header or ?api_key=)")
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_body(exc.status, exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_body(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_body(422, "validation_error", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(grpc.aio.AioRpcError)
    async def rpc_error(request: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
        status, code = GRPC_TO_HTTP.get(exc.code(), (502, "upstream_error"))
        return error_body(status, code, exc.details() or exc.code().name)

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return error_body(404, "not_found", str(exc))

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: ValueError) -> JSONResponse:
        return error_body(400, "invalid_argument", str(exc))

    @app.get("/health")
    async def health() -> dict:
        services = await gw.clients.health() if gw.clients else {}
        try:
            await gw.db_query("SELECT 1", ())
            db_ok = True
        except (psycopg.Error, OSError):
            db_ok = False
        serving = all(v == "SERVING" for v in services.values())
        redis_ok = await gw.live.ping() if gw.live else False
        # The detector's device is the one that matters (the gateway itself runs no model).
        device = "unknown"
        if services.get("detection") == "SERVING":
            try:
                info = await gw.clients.detection.GetModelInfo(
                    detection_pb2.DetectionServiceGetModelInfoRequest(), timeout=2.0, metadata=gw.clients.metadata
                )
                device = info.info.device
            except grpc.aio.AioRpcError:
                pass
        return {
            "status": "healthy" if serving and db_ok and (redis_ok or gw.live is None) else "degraded",
            "gpu_available": device.startswith("cuda"),
            "device": device,
            "models_loaded": services.get("detection") == "SERVING" and services.get("reid") == "SERVING",
            "database_connected": db_ok,
            "redis_connected": redis_ok,
            "history": gw.history.status() if gw.history else None,
            "services": services,
        }

    @app.get("/api/v1/")
    async def index() -> dict:
        return {"endpoints": sorted({getattr(r, "path", "") for r in app.routes if getattr(r, "path", "")})}

    @app.get("/api/v1/video-sets/")
    async def list_video_sets() -> dict:
        return {"video_sets": [vs.to_dict() for vs in (await gw.video_sets()).values()]}

    @app.post("/api/v1/video-sets/", status_code=201)
    async def create_video_set(body: VideoSetDoc) -> dict:
        """Add a site (cameras, floor, zones, lines, rules) without editing YAML; stored in the database."""
        return await store_video_set(body.root, create=True)

    @app.put("/api/v1/video-sets/{name}")
    async def replace_video_set(name: str, body: VideoSetDoc) -> dict:
        """Change a stored video set (cameras, zones, lines, rules); running sessions keep the version they began
        with."""
        if body.root.get("name", name) != name:
            raise ApiError(400, "invalid_argument", "the body's name must match the path")
        return await store_video_set({**body.root, "name": name}, create=False)

    @app.delete("/api/v1/video-sets/{name}")
    async def delete_video_set(name: str) -> dict:
        if name in await asyncio.to_thread(gw.catalog.all):
            raise ApiError(409, "failed_precondition", f"video set {name!r} is defined by a YAML file")
        rows = await gw.db_query("DELETE FROM video_sets WHERE name = %s RETURNING name", (name,))
        if not rows:
            raise ApiError(404, "not_found", f"unknown video set {name!r}")
        return {"deleted": name}

    async def store_video_set(doc: dict, create: bool) -> dict:
        vs = gw.parse_and_check(doc)
        if vs.name in await asyncio.to_thread(gw.catalog.all):
            raise ApiError(409, "failed_precondition", f"video set {vs.name!r} is defined by a YAML file")
        sql = (
            "INSERT INTO video_sets (name, doc) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING name"
            if create
            else "UPDATE video_sets SET doc = %s, updated_at = now() WHERE name = %s RETURNING name"
        )
        params = (vs.name, json.dumps(doc)) if create else (json.dumps(doc), vs.name)
        if not await gw.db_query(sql, params):
            if create:
                raise ApiError(409, "already_exists", f"video set {vs.name!r} exists; PUT changes it")
            raise ApiError(404, "not_found", f"unknown video set {vs.name!r}")
        for cam in vs.cameras:
            if cam.homography or cam.points:
                cal = mapping_pb2.Calibration(
                    video_set=vs.name,
                    camera_id=cam.id,
                    points=[
                        mapping_pb2.PointPair(
                            image=common_pb2.Point2(x=i[0], y=i[1]), floor=common_pb2.Point2(x=f[0], y=f[1])
                        )
                        for i, f in cam.points
                    ],
                    foot_offset_px=common_pb2.Point2(x=cam.foot_offset_px[0], y=cam.foot_offset_px[1]),
                )
                if cam.homography:
                    cal.homography.extend(v for row in cam.homography for v in row)
                await gw.clients.mapping.SetCalibration(
                    mapping_pb2.SetCalibrationRequest(calibration=cal),
                    timeout=settings.rpc_timeout_s,
                    metadata=gw.clients.metadata,
                )
        return vs.to_dict()

    @app.get("/api/v1/video-sets/{name}")
    async def get_video_set(name: str) -> dict:
        return (await gw.video_set(name)).to_dict()

    @app.get("/api/v1/video-sets/{name}/floor")
    async def get_floor(name: str) -> dict:
        vs = (await gw.video_set(name)).to_dict()
        return {"floor": vs["floor"], "zones": vs["zones"], "lines": vs["lines"]}

    @app.get("/api/v1/video-sets/{name}/floor.png")
    async def get_floor_image(name: str) -> FileResponse:
        vs = await gw.video_set(name)
        if not vs.floor.image:
            raise ApiError(404, "not_found", f"video set {name!r} has no floor image")
        path = (vs.path.parent / vs.floor.image).resolve()
        if not path.is_file() or vs.path.parent.resolve() not in path.parents:
            raise ApiError(404, "not_found", f"floor image {vs.floor.image!r} not found")
        return FileResponse(path)

    @app.post("/api/v1/tracking/{session_id}/persons/merge")
    async def merge_persons(session_id: str, body: MergeBody) -> dict:
        """Operator correction: person ``from`` is person ``into`` (reid_svc records it; history is not rewritten)."""
        await gw.summary(session_id)
        _, reid = await gw.clients.reid_for(session_id)  # the replica holding the session's gallery
        reply = await reid.MergeIdentities(
            reid_pb2.MergeIdentitiesRequest(session_id=session_id, into_global_id=body.into, from_global_id=body.from_),
            timeout=settings.rpc_timeout_s,
            metadata=gw.clients.metadata,
        )
        return {"global_id": reply.global_id}

    @app.post("/api/v1/tracking/{session_id}/persons/split")
    async def split_track(session_id: str, body: SplitBody) -> dict:
        """Operator correction: this camera's track is a person of its own from now on."""
        await gw.summary(session_id)
        _, reid = await gw.clients.reid_for(session_id)
        reply = await reid.SplitTrack(
            reid_pb2.SplitTrackRequest(session_id=session_id, camera_id=body.camera_id, track_id=body.track_id),
            timeout=settings.rpc_timeout_s,
            metadata=gw.clients.metadata,
        )
        return {"global_id": reply.new_global_id}

    calib_path = "/api/v1/video-sets/{name}/cameras/{camera_id}/calibration"

    async def get_calibration_proto(name: str, camera_id: str) -> mapping_pb2.Calibration:
        (await gw.video_set(name)).camera(camera_id)
        reply = await gw.clients.mapping.GetCalibration(
            mapping_pb2.GetCalibrationRequest(video_set=name, camera_id=camera_id),
            timeout=settings.rpc_timeout_s,
            metadata=gw.clients.metadata,
        )
        return reply.calibration

    @app.get(calib_path)
    async def get_calibration(name: str, camera_id: str) -> dict:
        return calibration_json(await get_calibration_proto(name, camera_id))

    @app.put(calib_path)
    async def put_calibration(name: str, camera_id: str, body: CalibrationBody) -> dict:
        (await gw.video_set(name)).camera(camera_id)
        cal = mapping_pb2.Calibration(
            video_set=name,
            camera_id=camera_id,
            points=_pairs_proto(body.points),
            foot_offset_px=common_pb2.Point2(x=body.foot_offset_px[0], y=body.foot_offset_px[1]),
        )
        if body.homography is not None:
            cal.homography.extend(v for row in body.homography for v in row)
        if body.distortion is not None:
            cal.distortion.camera_matrix.extend(v for row in body.distortion.camera_matrix for v in row)
            cal.distortion.coefficients.extend(body.distortion.coefficients)
        reply = await gw.clients.mapping.SetCalibration(
            mapping_pb2.SetCalibrationRequest(calibration=cal),
            timeout=settings.rpc_timeout_s,
            metadata=gw.clients.metadata,
        )
        return {"calibration": calibration_json(reply.calibration), "reprojection_error_m": reply.reprojection_error_m}

    @app.post(calib_path + "/fit")
    async def fit_calibration(name: str, camera_id: str, body: FitBody) -> dict:
        (await gw.video_set(name)).camera(camera_id)
        reply = await gw.clients.mapping.FitCalibration(
            mapping_pb2.FitCalibrationRequest(points=_pairs_proto(body.points)),
            timeout=settings.rpc_timeout_s,
            metadata=gw.clients.metadata,
        )
        h = list(reply.homography)
        return {
            "homography": [h[0:3], h[3:6], h[6:9]],
            "reprojection_error_m": reply.reprojection_error_m,
            "inliers": list(reply.inliers),
        }

    async def calibration_picture(name: str, camera_id: str, frame: int, draw) -> Response:  # type: ignore[no-untyped-def]
        if frame < 1:
            raise ApiError(400, "invalid_argument", "frame is 1-based")
        vs = await gw.video_set(name)
        cal = await get_calibration_proto(name, camera_id)
        image = await asyncio.to_thread(read_frame, vs.source_uri(vs.camera(camera_id)), frame)
        h = np.array(cal.homography, np.float64).reshape(3, 3)
        png = await asyncio.to_thread(lambda: cv2.imencode(".png", draw(image, h, vs))[1].tobytes())
        return Response(png, media_type="image/png")

    @app.get(calib_path + "/overlay.png")
    async def calibration_overlay(name: str, camera_id: str, frame: int = 1) -> Response:
        return await calibration_picture(name, camera_id, frame, overlay)

    @app.get(calib_path + "/birdseye.png")
    async def calibration_birdseye(
        name: str, camera_id: str, frame: int = 1, px_per_m: float = Query(20.0, gt=0, le=200)
    ) -> Response:
        return await calibration_picture(name, camera_id, frame, lambda im, h, vs: birdseye(im, h, vs, px_per_m))

    @app.post("/api/v1/sessions/", status_code=201)
    async def create_session(body: SessionCreate) -> dict:
        vs = await gw.video_set(body.video_set)
        cameras = body.cameras or [c.id for c in vs.cameras]
        for cam in cameras:
            vs.camera(cam)
        if len(set(cameras)) != len(cameras):
            raise ApiError(400, "invalid_argument", "cameras must be unique")
        if len(cameras) > settings.max_cameras_per_session:
            raise ApiError(400, "invalid_argument", f"at most {settings.max_cameras_per_session} cameras per session")
        running = sum(1 for s in gw.sessions.values() if s.status in ("starting", "running"))
        if running >= settings.max_concurrent_sessions:
            raise ApiError(429, "too_many_sessions", f"at most {settings.max_concurrent_sessions} sessions at once")
        options = body.options.model_dump(exclude_defaults=True)
        check_sources(vs, settings)
        session = Session(vs, cameras, options, settings, gw.clients, gw.history, gw.live)
        await gw.record_session(session)
        if gw.live is not None:
            await gw.live.announce(session.id, session.summary())
        gw.start_session(session)
        return {"session_id": session.id, **session.summary()}

    @app.get("/api/v1/sessions/")
    async def list_sessions() -> dict:
        """This replica's sessions, and with Redis those the other replicas run."""
        local = [s.summary() for s in gw.sessions.values()]
        remote = []
        if gw.live is not None:
            with contextlib.suppress(RedisError, OSError):
                remote = [r for r in await gw.live.summaries() if r["session_id"] not in gw.sessions]
        return {"sessions": local + remote}

    @app.get("/api/v1/sessions/{session_id}")
    async def get_session(session_id: str) -> dict:
        return await gw.summary(session_id)

    @app.delete("/api/v1/sessions/{session_id}")
    async def stop_session(
        session_id: str,
        purge: bool = Query(False, description="also delete its history, identity gallery and thumbnails"),
    ) -> dict:
        """Stop a session; with ``purge=true`` it is forgotten: every stored row about it is deleted."""
        if session_id in gw.sessions:
            session = gw.sessions[session_id]
            await session.stop()
            await session.done.wait()
            summary = session.summary()
        elif purge and await gw.db_query("SELECT 1 FROM sessions WHERE session_id = %s", (session_id,)):
            summary = {"session_id": session_id, "status": "stopped"}
        else:
            summary = await gw.summary(session_id)
        if purge:
            for task in list(gw.tasks):  # its end record first, so nothing is written after the purge
                if task.get_name() == f"finish-{session_id}":
                    await task
            summary["purged_rows"] = await gw.purge(session_id)
            gw.sessions.pop(session_id, None)
        return summary

    @app.post("/api/v1/sessions/{session_id}/pause")
    async def pause_session(session_id: str) -> dict:
        """Hold a file session where it is (409 for live sources or an ended session)."""
        session = gw.session(session_id)
        try:
            session.pause()
        except ValueError as exc:
            raise ApiError(409, "failed_precondition", str(exc)) from None
        return session.summary()

    @app.post("/api/v1/sessions/{session_id}/resume")
    async def resume_session(session_id: str) -> dict:
        session = gw.session(session_id)
        session.resume()
        return session.summary()

    @app.post("/api/v1/sessions/{session_id}/seek")
    async def seek_session(session_id: str, body: SeekBody) -> dict:
        """Continue every camera of a file session from this source frame (or second)."""
        session = gw.session(session_id)
        frame = body.frame_index or 1 + round(
            (body.seconds or 0) * (session.video_set.camera(session.camera_ids[0]).fps or 25)
        )
        try:
            session.seek(frame)
        except ValueError as exc:
            raise ApiError(409, "failed_precondition", str(exc)) from None
        return session.summary()

    @app.get("/api/v1/sessions/{session_id}/cameras/{camera_id}/stream.mjpeg")
    async def camera_stream(
        session_id: str,
        camera_id: str,
        max_frames: int = Query(0, ge=0),
        privacy: bool = Query(False, description="blur every person (PRIVACY_MODE=true forces it)"),
    ) -> StreamingResponse:
        """The camera's frames with tracks drawn (box, global id), as multipart JPEG, one part per step."""
        privacy = privacy or settings.privacy_mode
        session = gw.session(session_id)
        if camera_id not in session.camera_ids:
            raise ApiError(404, "not_found", f"session {session_id} has no camera {camera_id!r}")

        async def parts():  # type: ignore[no-untyped-def]
            sent = 0
            while True:
                ready = session.frame_ready
                latest = session.latest_frames.get(camera_id)
                if latest is not None:
                    jpeg = await asyncio.to_thread(annotate_jpeg, *latest, privacy)
                    yield b"--frame\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg + b"\r\n"
                    sent += 1
                if session.done.is_set() or (max_frames and sent >= max_frames):
                    return
                await ready.wait()

        return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=frame")

    @app.get("/api/v1/tracking/{session_id}")
    async def latest_step(session_id: str) -> dict:
        if session_id in gw.sessions:
            latest = gw.sessions[session_id].latest
        else:
            await gw.summary(session_id)
            latest = await gw.live.latest(session_id)
        if latest is None:
            raise ApiError(404, "not_found", f"session {session_id} has no step yet")
        return latest

    @app.get("/api/v1/tracking/{session_id}/persons")
    async def persons(session_id: str) -> dict:
        await gw.summary(session_id)
        rows = await gw.db_query(
            "SELECT global_id, first_seen, last_seen, cameras FROM persons WHERE session_id = %s ORDER BY global_id",
            (session_id,),
        )
        base = f"/api/v1/tracking/{session_id}/persons"
        return {
            "persons": [
                {
                    "global_id": g,
                    "first_seen": f.isoformat(),
                    "last_seen": last.isoformat(),
                    "cameras": c,
                    "thumbnail": f"{base}/{g}/thumbnail.jpg",
                }
                for g, f, last, c in rows
            ]
        }

    @app.get("/api/v1/tracking/{session_id}/persons/{global_id}/thumbnail.jpg")
    async def person_thumbnail(session_id: str, global_id: int) -> Response:
        """The person's best crop (largest, sharpest, least occluded), to review a merge before making it; 404
        when reid has none (unknown, or retired after ``retire_after_s`` unseen)."""
        await gw.summary(session_id)
        _, reid = await gw.clients.reid_for(session_id)
        reply = await reid.GetPersonThumbnail(
            reid_pb2.GetPersonThumbnailRequest(session_id=session_id, global_id=global_id),
            timeout=settings.rpc_timeout_s,
            metadata=gw.clients.metadata,
        )
        headers = {"X-Camera-Id": reply.camera_id, "X-Timestamp-Ns": str(reply.timestamp_ns)}
        return Response(reply.jpeg, media_type="image/jpeg", headers=headers)

    async def analytics_call(method: str, request):  # type: ignore[no-untyped-def]
        reply = await getattr(gw.clients.analytics, method)(
            request, timeout=settings.rpc_timeout_s, metadata=gw.clients.metadata
        )
        return json_format.MessageToDict(
            reply, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )

    def as_int_ns(d: dict) -> dict:
        """int64 fields arrive as strings from protobuf JSON; ISO times are friendlier, ns stay exact."""
        for key in ("start_ns", "timestamp_ns", "first_ns", "last_ns"):
            if key in d:
                d[key] = int(d[key])
                d[key.replace("_ns", "")] = iso_ns(d[key]) if d[key] else None
        for v in d.values():
            for item in v if isinstance(v, list) else []:
                if isinstance(item, dict):
                    as_int_ns(item)
        return d

    @app.get("/api/v1/analytics/occupancy")
    async def occupancy(
        span: Span,
        bucket_s: float = Query(1.0, gt=0),
        group_by: str = "",
    ) -> dict:
        groups = {"": 0, "camera": 1, "zone": 2}
        if group_by not in groups:
            raise ApiError(400, "invalid_argument", "group_by must be camera or zone")
        request = analytics_pb2.OccupancyRequest(range=span, bucket_s=bucket_s, group_by=groups[group_by])
        return as_int_ns(await analytics_call("Occupancy", request))

    @app.get("/api/v1/analytics/people-count")
    async def people_count(
        span: Span,
    ) -> dict:
        reply = await analytics_call("PeopleCount", analytics_pb2.PeopleCountRequest(range=span))
        return {"count": reply["count"], "global_ids": [int(g) for g in reply["global_ids"]]}

    @app.get("/api/v1/analytics/dwell")
    async def dwell(span: Span, zone_id: str = "") -> dict:
        request = analytics_pb2.DwellRequest(range=span, zone_id=zone_id)
        reply = await analytics_call("Dwell", request)
        for d in reply["dwells"]:
            d["global_id"] = int(d["global_id"])
        return reply

    @app.get("/api/v1/analytics/heatmap")
    async def heatmap(span: Span, cell_m: float = Query(0.5, gt=0)) -> dict:
        request = analytics_pb2.HeatmapRequest(range=span, cell_m=cell_m)
        return await analytics_call("Heatmap", request)

    @app.get("/api/v1/analytics/heatmap.png")
    async def heatmap_png(
        span: Span,
        cell_m: float = Query(0.5, gt=0),
        px_per_m: float = Query(20.0, gt=0, le=200),
    ) -> Response:
        h = await heatmap(span, cell_m)
        png = await asyncio.to_thread(render_heatmap, h, px_per_m)
        return Response(png, media_type="image/png")

    @app.get("/api/v1/analytics/zone-events")
    async def zone_events(span: Span, zone_id: str = "") -> dict:
        request = analytics_pb2.ZoneEventsRequest(range=span, zone_id=zone_id)
        reply = as_int_ns(await analytics_call("ZoneEvents", request))
        for e in reply["events"]:
            e["global_id"] = int(e["global_id"])
            e["kind"] = e["kind"].removeprefix("ZONE_EVENT_KIND_").lower()
        return reply

    @app.get("/api/v1/analytics/line-crossings")
    async def line_crossings(span: Span, line_id: str = "") -> dict:
        request = analytics_pb2.LineCrossingsRequest(range=span, line_id=line_id)
        return await analytics_call("LineCrossings", request)

    @app.get("/api/v1/analytics/trajectory")
    async def trajectory(
        span: Span,
        global_id: int = 0,
        simplify_m: float = Query(0.0, ge=0),
    ) -> dict:
        request = analytics_pb2.TrajectoryRequest(range=span, global_id=global_id, simplify_m=simplify_m)
        reply = as_int_ns(await analytics_call("Trajectory", request))
        for t in reply["trajectories"]:
            t["global_id"] = int(t["global_id"])
        return reply

    @app.get("/api/v1/analytics/summary")
    async def summary(
        span: Span,
    ) -> dict:
        reply = await analytics_call("Summary", analytics_pb2.SummaryRequest(range=span))
        reply["track_points"] = int(reply["track_points"])
        return as_int_ns(reply)

    @app.get("/api/v1/analytics/export")
    async def export(span: Span, format: str = "csv") -> Response:
        formats = {"csv": analytics_pb2.EXPORT_FORMAT_CSV, "parquet": analytics_pb2.EXPORT_FORMAT_PARQUET}
        if format not in formats:
            raise ApiError(400, "invalid_argument", "format must be csv or parquet")
        call = gw.clients.analytics.Export(
            analytics_pb2.ExportRequest(range=span, format=formats[format]),
            timeout=settings.rpc_timeout_s,
            metadata=gw.clients.metadata,
        )
        data = b"".join([chunk.chunk async for chunk in call])
        media = "text/csv" if format == "csv" else "application/vnd.apache.parquet"
        filename = f"spoton-{span.session_id}.{format}"
        return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    async def relay(websocket: WebSocket, session_id: str, events: bool, global_id: int | None = None) -> None:
        """Send a session's live messages (steps, or zone events and alerts) until it ends or the client goes."""
        session = gw.sessions.get(session_id)
        await websocket.accept()
        if keys and not has_key(websocket.headers, websocket.query_params, keys):
            await websocket.close(code=4401, reason="missing or invalid API key")
            return
        if session is None:
            remote = await gw.remote_summary(session_id)
            if remote is None:
                await websocket.close(code=4404, reason=f"unknown session {session_id}")
            else:
                await relay_remote(websocket, session_id, events, global_id)
            return
        if len(session.event_subscribers if events else session.subscribers) >= settings.max_ws_clients_per_session:
            await websocket.close(code=4429, reason="too many WebSocket clients for this session")
            return
        queue = session.subscribe(events=events)
        try:
            if session.done.is_set():
                await websocket.send_json(
                    {
                        "type": "session_ended",
                        "session_id": session_id,
                        "status": session.status,
                        "steps": session.steps,
                        "error": session.last_error,
                    }
                )
                return
            while True:
                message = await queue.get()
                if global_id is not None and message.get("type") == "step":
                    message = _filter_person(message, global_id)
                await websocket.send_json(message)
                if message.get("type") == "session_ended":
                    break
        except WebSocketDisconnect:
            pass
        finally:
            session.unsubscribe(queue)
            with contextlib.suppress(RuntimeError):
                await websocket.close()

    async def relay_remote(websocket: WebSocket, session_id: str, events: bool, global_id: int | None) -> None:
        """Relay a session that another replica runs, from its Redis channel."""
        try:
            async for message in gw.live.follow(session_id, "events" if events else "tracking"):
                if global_id is not None and message.get("type") == "step":
                    message = _filter_person(message, global_id)
                await websocket.send_json(message)
                if message.get("type") == "session_ended":
                    break
        except (WebSocketDisconnect, RedisError, OSError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):
                await websocket.close()

    @app.websocket("/ws/tracking/{session_id}")
    async def ws_tracking(websocket: WebSocket, session_id: str, global_id: int | None = None) -> None:
        await relay(websocket, session_id, False, global_id)

    @app.websocket("/ws/events/{session_id}")
    async def ws_events(websocket: WebSocket, session_id: str) -> None:
        await relay(websocket, session_id, True)

    @app.get("/", include_in_schema=False)
    async def dashboard() -> Response:
        page = STATIC / "index.html"
        if not page.exists():
            raise HTTPException(404, "dashboard not built")
        return FileResponse(page)

    return app


OPEN_PATHS = ("/health", "/metrics", "/", "/favicon.ico")


def is_open_path(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith("/metrics/")


def has_key(headers, query_params, keys: frozenset[str]) -> bool:  # type: ignore[no-untyped-def]
    return key_matches(headers.get("x-api-key") or query_params.get("api_key"), keys)


def annotate_jpeg(frame: common_pb2.Frame, tracks: list[dict], privacy: bool = False) -> bytes:
    """The frame as JPEG with each track's box and global id drawn (colour by id); ``privacy`` blurs every
    person's box first, so the stream shows where people are but not who."""
    image = decode_frame(frame)
    if not image.flags.writeable:  # RAW frames decode to a view of the message's bytes
        image = image.copy()
    h, w = image.shape[:2]
    for t in tracks:
        gid = t["global_id"] or 0
        hue = (gid * 47) % 180
        colour = tuple(int(c) for c in cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0])
        x1, y1, x2, y2 = (round(v) for v in t["bbox"])
        if privacy:
            a, b, c, d = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
            if c > a and d > b:
                k = max(3, ((c - a) // 3) | 1)
                image[b:d, a:c] = cv2.GaussianBlur(image[b:d, a:c], (k, k), 0)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
        cv2.putText(image, str(gid), (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 2, cv2.LINE_AA)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


def iso_ns(ts_ns: int) -> str:
    from gateway.pipeline import iso

    return iso(ts_ns)


def render_heatmap(h: dict, px_per_m: float) -> bytes:
    """Presence-seconds grid -> a colour PNG of the floor, north up (log scale, inferno)."""
    grid = np.array(h["seconds"], float).reshape(int(h["rows"]), int(h["cols"]))
    scaled = np.log1p(grid)
    scaled = (255 * scaled / scaled.max()).astype(np.uint8) if scaled.max() > 0 else scaled.astype(np.uint8)
    image = cv2.applyColorMap(np.flipud(scaled), cv2.COLORMAP_INFERNO)
    size = (
        max(1, round(grid.shape[1] * h["cell_m"] * px_per_m)),
        max(1, round(grid.shape[0] * h["cell_m"] * px_per_m)),
    )
    return cv2.imencode(".png", cv2.resize(image, size, interpolation=cv2.INTER_NEAREST))[1].tobytes()


def _filter_person(message: dict, global_id: int) -> dict:
    cams = {
        c: {**v, "tracks": [t for t in v["tracks"] if t["global_id"] == global_id]}
        for c, v in message["cameras"].items()
    }
    return {**message, "cameras": cams}


def main() -> None:
    import uvicorn

    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,
        ws_ping_interval=20,
    )
