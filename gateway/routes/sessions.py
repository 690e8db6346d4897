"""Sessions: start one over a video set, list, stop (and purge), pause, resume, seek, and each camera's MJPEG."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError

from gateway.auth import Role
from gateway.deps import GatewayDep, Operator, PrincipalDep
from gateway.errors import ApiError
from gateway.pipeline import Session
from gateway.render import annotate_jpeg
from spoton.videoset import check_sources

router = APIRouter(prefix="/api/v1/sessions")


class IdentityEmbeddingOptions(BaseModel):
    """Overrides of the identity-embedding budget (IDENTITY_EMBED_*; gateway/identity_embed.py)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["budget", "every"] | None = Field(None, description="budget, or every tracked detection")
    every_s: float | None = Field(None, ge=0, le=3600, description="re-embed a clean track this often (media s)")
    max_covered: float | None = Field(None, ge=0, le=1, description="largest share another box may cover")
    min_sharpness: float | None = Field(None, ge=0, description="Laplacian variance at 128 px height; 0 = off")
    max_per_step: int | None = Field(None, ge=0, le=10000, description="crops per step; 0 = no cap")


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
    detection_schedule: Literal["fixed", "motion", "adaptive"] | None = Field(
        None, description="which camera frames are detected (the rest are predicted); empty = DETECTION_SCHEDULE"
    )
    detect_every: int | None = Field(None, ge=1, le=30, description="period / longest run between detections")
    motion_threshold: float | None = Field(None, ge=0, le=1, description="motion mode: changed-pixel share")
    schedule_prediction: Literal["kalman", "flow", "detections"] | None = Field(
        None,
        description="boxes of skipped frames: tracker Kalman, optical flow, or the previous detections moved by "
        "optical flow and tracked; empty = SCHEDULE_PREDICTION",
    )
    identity_embedding: IdentityEmbeddingOptions | None = Field(
        None, description="identity embeddings per track: when and how many (empty = IDENTITY_EMBED_*)"
    )


class SessionCreate(BaseModel):
    video_set: str = Field(min_length=1)
    cameras: list[str] | None = None
    options: SessionOptions = Field(default_factory=SessionOptions)


class SeekBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frame_index: int | None = Field(None, ge=1, description="1-based source frame")
    seconds: float | None = Field(None, ge=0, description="or a media time from the start, seconds")


@router.post("/", status_code=201, dependencies=[Operator])
async def create_session(body: SessionCreate, gw: GatewayDep) -> dict:
    settings = gw.settings
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
    await asyncio.to_thread(check_sources, vs, settings)  # resolves source hosts (DNS): off the event loop
    session = Session(vs, cameras, options, settings, gw.clients, gw.history, gw.live)
    await gw.store.record_session(session)
    if gw.live is not None:
        await gw.live.announce(session.id, session.summary())
    gw.start_session(session)
    return {"session_id": session.id, **session.summary()}


@router.get("/")
async def list_sessions(gw: GatewayDep) -> dict:
    """This replica's sessions, and with Redis those the other replicas run."""
    local = [s.summary() for s in gw.sessions.values()]
    remote = []
    if gw.live is not None:
        with contextlib.suppress(RedisError, OSError):
            remote = [r for r in await gw.live.summaries() if r["session_id"] not in gw.sessions]
    return {"sessions": local + remote}


@router.get("/{session_id}")
async def get_session(session_id: str, gw: GatewayDep) -> dict:
    return await gw.summary(session_id)


@router.delete("/{session_id}", dependencies=[Operator])
async def stop_session(
    session_id: str,
    gw: GatewayDep,
    principal: PrincipalDep,
    purge: bool = Query(False, description="also delete its history, identity gallery and thumbnails"),
) -> dict:
    """Stop a session (operator); with ``purge=true`` (admin) it is forgotten: every stored row about it is
    deleted."""
    if purge and principal.role < Role.ADMIN:
        raise ApiError(403, "forbidden", f"purge needs the admin role (you are {principal.role.label})")
    if session_id in gw.sessions:
        session = gw.sessions[session_id]
        await session.stop()
        await session.done.wait()
        summary = session.summary()
    elif purge and await gw.store.session_exists(session_id):
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


@router.post("/{session_id}/pause", dependencies=[Operator])
async def pause_session(session_id: str, gw: GatewayDep) -> dict:
    """Hold a file session where it is (409 for live sources or an ended session)."""
    session = gw.session(session_id)
    try:
        session.pause()
    except ValueError as exc:
        raise ApiError(409, "failed_precondition", str(exc)) from None
    return session.summary()


@router.post("/{session_id}/resume", dependencies=[Operator])
async def resume_session(session_id: str, gw: GatewayDep) -> dict:
    session = gw.session(session_id)
    session.resume()
    return session.summary()


@router.post("/{session_id}/seek", dependencies=[Operator])
async def seek_session(session_id: str, body: SeekBody, gw: GatewayDep) -> dict:
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


@router.get("/{session_id}/cameras/{camera_id}/stream.mjpeg")
async def camera_stream(
    session_id: str,
    camera_id: str,
    gw: GatewayDep,
    max_frames: int = Query(0, ge=0),
    privacy: bool = Query(False, description="blur every person (PRIVACY_MODE=true forces it)"),
    boxes: bool = Query(True, description="draw each track's box and global id (the console draws its own)"),
) -> StreamingResponse:
    """The camera's frames with tracks drawn (box, global id), as multipart JPEG, one part per step. The console
    asks for bare frames (``boxes=false``) and draws the boxes itself, so identity updates relabel them at once."""
    privacy = privacy or gw.settings.privacy_mode
    session = gw.session(session_id)
    if camera_id not in session.camera_ids:
        raise ApiError(404, "not_found", f"session {session_id} has no camera {camera_id!r}")

    async def parts():  # type: ignore[no-untyped-def]
        # Each part is followed by the next boundary at once: a browser shows a part when it sees the boundary after
        # it, so a paused session's frame would otherwise never appear.
        yield b"--frame\r\n"
        sent = 0
        while True:
            ready = session.frame_ready
            latest = session.latest_frames.get(camera_id)
            if latest is not None:
                jpeg = await asyncio.to_thread(annotate_jpeg, *latest, privacy, boxes)
                head = b"Content-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                yield head + jpeg + b"\r\n--frame\r\n"
                sent += 1
            if session.done.is_set() or (max_frames and sent >= max_frames):
                return
            await ready.wait()

    return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=frame")
