"""One session's pipeline: sources -> detection -> reid embed -> tracking -> mapping -> reid associate -> out.

Each stage is a coroutine that owns one gRPC stream and passes ``StepWork`` on through a bounded queue, so step
t+1 is being detected while step t is tracked and associated (pipelining), and no stage runs ahead unboundedly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
import numpy as np
from google.protobuf import struct_pb2
from prometheus_client import Histogram

from gateway.clients import ServiceClients
from gateway.config import GatewaySettings
from gateway.events import ZoneEventDetector, step_floor_points
from gateway.history import HistoryWriter, ns_to_dt
from gateway.live import RedisLive
from gateway.rules import Alert, RuleEngine
from gateway.sources import LiveSource, SourceFrame, VideoSource, is_live
from spoton.bootstrap.logs import log_event
from spoton.domain import Detections, FloorPoints, Tracks, array_to_tensor, boxes_to_proto, tensor_to_rows
from spoton.frames import decode_frame, encode_frame, person_crop
from spoton.v1 import common_pb2, detection_pb2, mapping_pb2, reid_pb2, tracking_pb2
from spoton.videoset import VideoSet

log = logging.getLogger("gateway.pipeline")

QUEUE_DEPTH = 3
# Read frames wait for the detector in a queue of one: the detector always has its next step ready, and a step
# is never read long before it can be detected (step latency stays near two detector passes, not five).
READ_QUEUE_DEPTH = 1
# Track IDs of a camera whose tracker had to start afresh on another replica are offset by this much.
TRACK_ID_EPOCH = 1_000_000
FRAME_ENCODINGS = {
    "jpeg": common_pb2.FRAME_ENCODING_JPEG,
    "png": common_pb2.FRAME_ENCODING_PNG,
    "raw": common_pb2.FRAME_ENCODING_RAW_BGR8,
}
# Each track offers reid a crop for the person's thumbnail when it appears and then every 2 s of media time.
THUMBNAIL_EVERY_NS = 2_000_000_000
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
STAGE_SECONDS = Histogram(
    "spoton_gateway_stage_seconds",
    "Wall time of each pipeline stage per step (gRPC round trip included)",
    ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class StageGoneError(ConnectionError):
    """A stage's stream ended without an error status (its process drained or went away)."""


class StageLink:
    """One stage's bidirectional stream that reopens itself when the stage goes away.

    A request whose reply never came is sent again on the new stream (every stage's reply is a function of the
    request and the stream's state, so nothing is lost or doubled); a stage away for longer than ``timeout_s``
    fails the session with the last error.
    """

    def __init__(self, name: str, open_call, timeout_s: float, on_reconnect, on_failure=None) -> None:  # type: ignore[no-untyped-def]
        self.name = name
        self._open = open_call
        self._timeout_s = timeout_s
        self._on_reconnect = on_reconnect
        self._on_failure = on_failure
        self._call = None
        self.generation = 0

    async def exchange(self, request):  # type: ignore[no-untyped-def]
        deadline: float | None = None
        delay = 0.2
        while True:
            try:
                if self._call is None:
                    self._call = await self._open()
                await self._call.write(request)
                reply = await self._call.read()
                if reply is grpc.aio.EOF:
                    raise StageGoneError(f"{self.name} stream ended early")
                return reply
            except (grpc.aio.AioRpcError, StageGoneError, asyncio.InvalidStateError, ConnectionError) as exc:
                if isinstance(exc, grpc.aio.AioRpcError) and exc.code() not in RETRYABLE:
                    raise
                self.cancel()
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._timeout_s
                    self.generation += 1
                    detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
                    self._on_reconnect(self.name, detail or type(exc).__name__)
                elif now > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                if self._on_failure is not None:
                    with contextlib.suppress(ConnectionError):
                        await self._on_failure()

    async def close(self) -> None:
        if self._call is not None:
            await self._call.done_writing()

    def cancel(self) -> None:
        if self._call is not None:
            self._call.cancel()
            self._call = None


@dataclass
class CameraInput:
    camera_id: str
    frame: common_pb2.Frame
    detections: Detections | None = None
    embeddings: np.ndarray | None = None
    tracks: Tracks | None = None
    floor: FloorPoints | None = None
    global_ids: np.ndarray | None = None


@dataclass
class StepWork:
    step: int
    timestamp_ns: int
    cameras: list[CameraInput]
    stage_ms: dict[str, float] = field(default_factory=dict)
    started: float = 0.0  # perf_counter when its frames were read


@dataclass
class CameraProgress:
    frames: int = 0
    last_frame_index: int = 0
    frame_count: int = 0
    state: str = "starting"  # file | ended | connecting | live | reconnecting | stalled
    dropped: int = 0
    reconnects: int = 0
    ended: bool = False


def iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


class Session:
    """A running (or finished) session: its pipeline task, progress, latest step and subscribers."""

    def __init__(
        self,
        video_set: VideoSet,
        camera_ids: list[str],
        options: dict,
        settings: GatewaySettings,
        clients: ServiceClients,
        history: HistoryWriter | None,
        live: RedisLive | None = None,
        session_id: str | None = None,
    ) -> None:
        self.id = session_id or uuid.uuid4().hex[:12]
        self.live = live
        self.video_set = video_set
        self.camera_ids = camera_ids
        self.options = options
        self.settings = settings
        self.clients = clients
        self.history = history
        self.status = "starting"
        self.created_at = time.time()
        self.media_start_ns = int(options.get("media_start_ns") or time.time_ns())
        self.max_steps = int(options.get("max_steps") or 0)
        self.steps = 0
        self.last_error: str | None = None
        self.latest: dict | None = None
        self.progress = {c: CameraProgress() for c in camera_ids}
        self.stage_ms: dict[str, deque] = defaultdict(lambda: deque(maxlen=5000))
        self.frame_bytes: deque = deque(maxlen=5000)
        self.reconnects: dict[str, int] = defaultdict(int)
        self.subscribers: set[asyncio.Queue] = set()
        # Latest encoded frame and its tracks per camera, for the annotated MJPEG stream.
        self.latest_frames: dict[str, tuple[common_pb2.Frame, list[dict]]] = {}
        self.frame_ready = asyncio.Event()
        self.event_subscribers: set[asyncio.Queue] = set()
        self.zone_events = ZoneEventDetector(video_set)
        self.rules = RuleEngine(video_set.rules)
        self.webhook_failures = 0
        self._webhook_tasks: set[asyncio.Task] = set()
        self.event_counts: dict[str, int] = defaultdict(int)
        self.calibrated: set[str] = set()
        self._started_mono = time.monotonic()
        self._finished_mono: float | None = None
        self._task: asyncio.Task | None = None
        self.done = asyncio.Event()
        self._resume = asyncio.Event()
        self._resume.set()
        self._seek_to: int | None = None
        self.has_live_sources = False

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"session-{self.id}")

    async def stop(self) -> None:
        if self._task and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def pause(self) -> None:
        """Hold the sources (file sessions only: a live camera does not wait)."""
        self._require_files("pause")
        self._resume.clear()
        if self.status == "running":
            self.status = "paused"

    def resume(self) -> None:
        self._resume.set()
        if self.status == "paused":
            self.status = "running"

    def seek(self, frame_index: int) -> None:
        """Continue every camera from this 1-based source frame (applied before the next step)."""
        self._require_files("seek")
        if frame_index < 1:
            raise ValueError("frame_index must be >= 1")
        self._seek_to = frame_index

    def _require_files(self, what: str) -> None:
        if self.has_live_sources:
            raise ValueError(f"cannot {what} a session with live sources")
        if self.done.is_set():
            raise ValueError(f"cannot {what} a session that has ended")

    def subscribe(self, events: bool = False) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(maxsize=256)
        (self.event_subscribers if events else self.subscribers).add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.subscribers.discard(q)
        self.event_subscribers.discard(q)

    @staticmethod
    def _fan_out(queues: set[asyncio.Queue], message: dict) -> None:
        for q in list(queues):
            if q.full():  # a slow client loses its oldest message, never stalls the pipeline
                q.get_nowait()
            q.put_nowait(message)

    def _publish(self, message: dict) -> None:
        self._fan_out(self.subscribers, message)
        ended = message.get("type") == "session_ended"
        if ended:
            self._fan_out(self.event_subscribers, message)
        if self.live is not None:
            if ended or self.steps % 10 == 1:
                self.live.set_summary(self.id, self.summary())
            self.live.publish(self.id, "tracking", message)
            if ended:
                self.live.publish(self.id, "events", message)

    def _publish_event(self, message: dict) -> None:
        self._fan_out(self.event_subscribers, message)
        if self.live is not None:
            self.live.publish(self.id, "events", message)

    def _emit_events(self, events, timestamp_ns: int | None = None) -> None:  # type: ignore[no-untyped-def]
        if timestamp_ns is not None:
            self._emit_alerts(self.rules.step(timestamp_ns, events))
        if not events:
            return
        if self.history is not None:
            self.history.add_events(
                [(ns_to_dt(e.timestamp_ns), self.id, e.zone_id, e.global_id, e.kind) for e in events]
            )
        for e in events:
            self.event_counts[e.kind] += 1
            self._publish_event(e.to_dict(self.id))

    @property
    def steps_per_s(self) -> float:
        end = self._finished_mono or time.monotonic()
        return self.steps / max(end - self._started_mono, 1e-9)

    def summary(self) -> dict:
        return {
            "session_id": self.id,
            "video_set": self.video_set.name,
            "cameras": self.camera_ids,
            "status": self.status,
            "created_at": self.created_at,
            "steps": self.steps,
            "steps_per_s": round(self.steps_per_s, 3),
            "camera_frames_per_s": round(self.steps_per_s * len(self.camera_ids), 3),
            "progress": {
                c: {
                    "frames": p.frames,
                    "last_frame_index": p.last_frame_index,
                    "frame_count": p.frame_count,
                    "ended": p.ended,
                    "state": p.state,
                    "dropped_frames": p.dropped,
                    "source_reconnects": p.reconnects,
                }
                for c, p in self.progress.items()
            },
            "dropped_frames": sum(p.dropped for p in self.progress.values()),
            "paused": not self._resume.is_set(),
            "events": dict(self.event_counts),
            "reconnects": dict(self.reconnects),
            "stage_ms": {k: round(float(np.mean(v)), 2) for k, v in self.stage_ms.items() if v},
            "stage_p50_ms": {k: round(float(np.percentile(v, 50)), 2) for k, v in self.stage_ms.items() if v},
            "stage_p95_ms": {k: round(float(np.percentile(v, 95)), 2) for k, v in self.stage_ms.items() if v},
            "frame_bytes_per_step": round(float(np.mean(self.frame_bytes)), 1) if self.frame_bytes else 0.0,
            "last_error": self.last_error,
            "media_start": iso(self.media_start_ns),
        }

    def _emit_alerts(self, alerts: list[Alert]) -> None:
        if not alerts:
            return
        if self.history is not None:
            self.history.add_alerts(
                [
                    (ns_to_dt(a.timestamp_ns), self.id, a.rule_id, a.kind, a.target, a.global_id, a.value, a.message)
                    for a in alerts
                ]
            )
        for a in alerts:
            message = a.to_dict(self.id)
            self.event_counts["alert"] += 1
            self._publish_event(message)
            if self.settings.alert_webhook_url:
                task = asyncio.create_task(self._post_webhook(message))
                self._webhook_tasks.add(task)
                task.add_done_callback(self._webhook_tasks.discard)

    async def _post_webhook(self, message: dict) -> None:
        import httpx

        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                r = await client.post(self.settings.alert_webhook_url, json=message)
                r.raise_for_status()
        except httpx.HTTPError as exc:
            self.webhook_failures += 1
            log_event(log, "alert webhook failed", level=logging.WARNING, session_id=self.id, error=str(exc))

    # ---- pipeline --------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        sources: dict[str, VideoSource | LiveSource] = {}
        try:
            fps: dict[str, float] = {}
            target = float(self.options.get("target_fps") or self.settings.target_fps or 0)
            loop = bool(self.options.get("loop"))
            for cam_id in self.camera_ids:
                cam = self.video_set.camera(cam_id)
                uri = self.video_set.source_uri(cam)
                if is_live(uri):
                    self.has_live_sources = True
                    sources[cam_id] = await asyncio.to_thread(LiveSource, uri)
                    fps[cam_id] = cam.fps or sources[cam_id].fps or 25.0
                    continue
                probe = VideoSource(uri)
                native = cam.fps or probe.fps or 25.0
                probe.close()
                stride = max(1, round(native / target)) if target else 1
                sources[cam_id] = VideoSource(uri, stride, loop)
                fps[cam_id] = native
                self.progress[cam_id].frame_count = sources[cam_id].frame_count
            await self._check_calibrations()
            self.status = "running"
            if self.live is not None:
                self.live.set_summary(self.id, self.summary())
            log_event(
                log,
                "session started",
                session_id=self.id,
                video_set=self.video_set.name,
                cameras=",".join(self.camera_ids),
            )
            queues = [asyncio.Queue(READ_QUEUE_DEPTH)] + [asyncio.Queue(QUEUE_DEPTH) for _ in range(5)]
            stages = [
                self._read(sources, fps, queues[0]),
                self._detect(queues[0], queues[1]),
                self._embed(queues[1], queues[2]),
                self._track(queues[2], queues[3], fps),
                self._project(queues[3], queues[4]),
                self._associate(queues[4], queues[5]),
                self._emit(queues[5]),
            ]
            tasks = [asyncio.create_task(s) for s in stages]
            try:
                await asyncio.gather(*tasks)
            finally:
                for t in tasks:
                    t.cancel()
            self.status = "finished"
        except asyncio.CancelledError:
            self.status = "stopped"
        except grpc.aio.AioRpcError as exc:
            self.status = "failed"
            self.last_error = f"{exc.code().name}: {exc.details()}"
        except Exception as exc:
            self.status = "failed"
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("session failed")
        finally:
            for src in sources.values():
                src.close()
            self._emit_events(self.zone_events.finish())
            self._finished_mono = time.monotonic()
            self._publish(
                {
                    "type": "session_ended",
                    "session_id": self.id,
                    "status": self.status,
                    "steps": self.steps,
                    "error": self.last_error,
                }
            )
            log_event(
                log,
                "session ended",
                session_id=self.id,
                status=self.status,
                steps=self.steps,
                steps_per_s=round(self.steps_per_s, 2),
                error=self.last_error,
            )
            self.done.set()

    async def _check_calibrations(self) -> None:
        for cam in self.camera_ids:
            try:
                await self.clients.mapping.GetCalibration(
                    mapping_pb2.GetCalibrationRequest(video_set=self.video_set.name, camera_id=cam),
                    timeout=self.settings.rpc_timeout_s,
                    metadata=self.clients.metadata,
                )
                self.calibrated.add(cam)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise

    async def _read(
        self, sources: dict[str, VideoSource | LiveSource], fps: dict[str, float], out: asyncio.Queue
    ) -> None:
        """One step per instant. Files advance in lockstep, one sampled frame per camera per step; live cameras give
        their newest frame (the ones the pipeline was too slow for are dropped and counted), and a camera that
        has nothing new is left out of the step rather than holding the others up."""
        quality = int(self.options.get("jpeg_quality") or self.settings.frame_jpeg_quality)
        encoding = FRAME_ENCODINGS[str(self.options.get("frame_encoding") or "jpeg")]
        target = float(self.options.get("target_fps") or self.settings.target_fps or 0)
        live_period = 1.0 / (target or max(fps.values(), default=25.0))
        step = 0
        next_tick = time.monotonic()

        def encode(cam_id: str, sf: SourceFrame) -> CameraInput:
            ts = sf.captured_ns or self.media_start_ns + round((sf.media_index - 1) / fps[cam_id] * 1e9)
            frame = encode_frame(sf.image, cam_id, sf.frame_index, ts, encoding, jpeg_quality=quality)
            p = self.progress[cam_id]
            p.frames += 1
            p.last_frame_index = sf.frame_index
            return CameraInput(cam_id, frame)

        def read_all() -> list[CameraInput]:
            items = []
            for cam_id, src in sources.items():
                p = self.progress[cam_id]
                if isinstance(src, LiveSource):
                    sf = src.take()
                    p.dropped, p.reconnects = src.dropped, src.reconnects
                    p.state = src.state if src.state != "live" or sf is not None else "stalled"
                    if sf is not None:
                        items.append(encode(cam_id, sf))
                    continue
                if p.ended:
                    continue
                sf = src.read()
                if sf is None:
                    p.ended, p.state = True, "ended"
                    continue
                p.state = "file"
                items.append(encode(cam_id, sf))
            return items

        while not self.max_steps or step < self.max_steps:
            await self._resume.wait()
            if self._seek_to is not None:
                target_frame, self._seek_to = self._seek_to, None
                for cam_id, src in sources.items():
                    if isinstance(src, VideoSource):
                        await asyncio.to_thread(src.seek, min(target_frame, src.frame_count or target_frame))
                        self.progress[cam_id].ended = False
            if self.has_live_sources:
                next_tick += live_period
                await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
                next_tick = max(next_tick, time.monotonic() - live_period)
            t0 = time.perf_counter()
            cameras = await asyncio.to_thread(read_all)
            if not cameras:
                if self.has_live_sources:
                    continue
                break
            step += 1
            work = StepWork(step, max(c.frame.timestamp_ns for c in cameras), cameras, started=t0)
            work.stage_ms["decode"] = (time.perf_counter() - t0) * 1000
            self.frame_bytes.append(sum(len(c.frame.data) for c in cameras))
            await out.put(work)
        await out.put(None)

    async def _stream_stage(self, link: StageLink, inp: asyncio.Queue, out: asyncio.Queue, request, merge) -> None:
        """Drive one bidirectional stream: a request per step in, its reply out, in order."""
        try:
            while (work := await inp.get()) is not None:
                t0 = time.perf_counter()
                merge(work, await link.exchange(request(work)))
                work.stage_ms[link.name] = (time.perf_counter() - t0) * 1000
                await out.put(work)
            await link.close()
        finally:
            link.cancel()
        await out.put(None)

    def _link(self, name: str, open_call, on_failure=None) -> StageLink:  # type: ignore[no-untyped-def]
        return StageLink(name, open_call, self.settings.stage_reconnect_timeout_s, self._on_reconnect, on_failure)

    def _on_reconnect(self, name: str, error: str) -> None:
        self.reconnects[name] += 1
        log_event(log, "stage reconnecting", level=logging.WARNING, session_id=self.id, stage=name, error=error)

    async def _detect(self, inp: asyncio.Queue, out: asyncio.Queue) -> None:
        def request(work: StepWork) -> detection_pb2.DetectStreamRequest:
            return detection_pb2.DetectStreamRequest(
                batch=detection_pb2.FrameBatch(step=work.step, frames=[c.frame for c in work.cameras])
            )

        def merge(work: StepWork, reply: detection_pb2.DetectStreamResponse) -> None:
            for cam, fd in zip(work.cameras, reply.batch.frames, strict=True):
                cam.detections = Detections.from_proto(fd.detections)

        async def open_call():  # type: ignore[no-untyped-def]
            return self.clients.detection.DetectStream(metadata=self.clients.metadata)

        await self._stream_stage(self._link("detect", open_call), inp, out, request, merge)

    async def _embed(self, inp: asyncio.Queue, out: asyncio.Queue) -> None:
        def request(work: StepWork) -> reid_pb2.EmbedStreamRequest:
            return reid_pb2.EmbedStreamRequest(
                step=work.step,
                items=[
                    reid_pb2.FrameBoxes(frame=c.frame, boxes=boxes_to_proto(c.detections.xyxy)) for c in work.cameras
                ],
            )

        def merge(work: StepWork, reply: reid_pb2.EmbedStreamResponse) -> None:
            for cam, t in zip(work.cameras, reply.embeddings, strict=True):
                cam.embeddings = tensor_to_rows(t, len(cam.detections))

        async def open_call():  # type: ignore[no-untyped-def]
            return self.clients.reid.EmbedStream(metadata=self.clients.metadata)

        await self._stream_stage(self._link("embed", open_call), inp, out, request, merge)

    async def _track(self, inp: asyncio.Queue, out: asyncio.Queue, fps: dict[str, float]) -> None:
        """One Track stream per camera, on the tracking replica that owns ``session/camera``. When a replica is
        lost the camera moves to another one; its tracker starts afresh there, so its track IDs move to a new
        range (``TRACK_ID_EPOCH``) and can never be confused with the old tracks in the identity gallery."""
        tracker = str(self.options.get("tracker") or self.settings.tracker_type)
        tracker_options = struct_pb2.Struct()
        tracker_options.update(self.options.get("tracker_options") or {})
        endpoints: dict[str, str] = {}
        offsets: dict[str, int] = defaultdict(int)
        generations: dict[str, int] = defaultdict(int)

        def opener(cam_id: str):  # type: ignore[no-untyped-def]
            async def open_call():  # type: ignore[no-untyped-def]
                ep, stub = await self.clients.tracking_for(f"{self.id}/{cam_id}")
                endpoints[cam_id] = ep
                call = stub.Track(metadata=self.clients.metadata)
                start = tracking_pb2.TrackStart(
                    session_id=self.id, camera_id=cam_id, tracker_type=tracker, options=tracker_options, fps=fps[cam_id]
                )
                await call.write(tracking_pb2.TrackRequest(start=start))
                return call

            async def on_failure() -> None:
                await self.clients.tracking_replicas.refresh(failed=endpoints.get(cam_id))

            return open_call, on_failure

        links = {c: self._link("track", *opener(c)) for c in self.camera_ids}
        try:

            async def one(cam: CameraInput) -> None:
                link = links[cam.camera_id]
                request = tracking_pb2.TrackRequest(
                    frame=tracking_pb2.TrackFrame(
                        frame_index=cam.frame.frame_index,
                        timestamp_ns=cam.frame.timestamp_ns,
                        width=cam.frame.width,
                        height=cam.frame.height,
                        detections=cam.detections.to_proto(),
                        embeddings=array_to_tensor(cam.embeddings),
                    )
                )
                reply = await link.exchange(request)
                if link.generation != generations[cam.camera_id]:
                    generations[cam.camera_id] = link.generation
                    if not reply.resumed:
                        offsets[cam.camera_id] += TRACK_ID_EPOCH
                tracks = Tracks.from_proto(reply.tracks)
                if offsets[cam.camera_id]:
                    tracks = dataclasses.replace(tracks, track_id=tracks.track_id + offsets[cam.camera_id])
                cam.tracks = tracks

            while (work := await inp.get()) is not None:
                t0 = time.perf_counter()
                await asyncio.gather(*(one(c) for c in work.cameras))
                work.stage_ms["track"] = (time.perf_counter() - t0) * 1000
                await out.put(work)
            for link in links.values():
                await link.close()
        finally:
            for link in links.values():
                link.cancel()
        await out.put(None)

    async def _project(self, inp: asyncio.Queue, out: asyncio.Queue) -> None:
        def request(work: StepWork) -> mapping_pb2.ProjectStreamRequest:
            return mapping_pb2.ProjectStreamRequest(
                step=work.step,
                video_set=self.video_set.name,
                cameras=[
                    mapping_pb2.CameraBoxes(camera_id=c.camera_id, boxes=boxes_to_proto(c.tracks.xyxy))
                    for c in work.cameras
                    if c.camera_id in self.calibrated
                ],
            )

        def merge(work: StepWork, reply: mapping_pb2.ProjectStreamResponse) -> None:
            by_cam = {c.camera_id: FloorPoints.from_proto(c.points) for c in reply.cameras}
            for cam in work.cameras:
                cam.floor = by_cam.get(cam.camera_id)

        async def open_call():  # type: ignore[no-untyped-def]
            return self.clients.mapping.ProjectStream(metadata=self.clients.metadata)

        await self._stream_stage(self._link("project", open_call), inp, out, request, merge)

    async def _associate(self, inp: asyncio.Queue, out: asyncio.Queue) -> None:
        """The session's Associate stream, on the reid replica that owns the session. A replica that comes back
        without the gallery is told the next unused global ID, so IDs already in the history are never reused."""
        values = dict(self.options.get("association") or {})
        max_gid = 0
        endpoint = ""
        crop_sent: dict[tuple[str, int], int] = {}  # (camera, track) -> media ns of its last crop

        def request(work: StepWork) -> reid_pb2.AssociateRequest:
            obs = []
            if len(crop_sent) > 10_000:  # forget tracks gone for a minute
                for key in [k for k, t in crop_sent.items() if work.timestamp_ns - t > 60_000_000_000]:
                    del crop_sent[key]
            for cam in work.cameras:
                tr = cam.tracks
                image = None
                for i in range(len(tr)):
                    di = int(tr.det_index[i])
                    ob = reid_pb2.Observation(
                        camera_id=cam.camera_id, track_id=int(tr.track_id[i]), timestamp_ns=cam.frame.timestamp_ns
                    )
                    if 0 <= di < len(cam.embeddings):
                        ob.embedding.CopyFrom(array_to_tensor(cam.embeddings[di : di + 1]))
                    if cam.floor is not None and cam.floor.valid[i]:
                        ob.floor.x_m, ob.floor.y_m = (float(v) for v in cam.floor.xy_m[i])
                    key, ts = (cam.camera_id, int(tr.track_id[i])), cam.frame.timestamp_ns
                    if ts - crop_sent.get(key, ts - THUMBNAIL_EVERY_NS) >= THUMBNAIL_EVERY_NS:
                        image = decode_frame(cam.frame) if image is None else image
                        crop = person_crop(image, tr.xyxy, i)
                        if crop is not None:
                            ob.crop_jpeg, ob.visibility = crop
                            crop_sent[key] = ts
                    obs.append(ob)
            return reid_pb2.AssociateRequest(
                step=reid_pb2.AssociateStep(step=work.step, timestamp_ns=work.timestamp_ns, observations=obs)
            )

        def merge(work: StepWork, reply: reid_pb2.AssociateResponse) -> None:
            nonlocal max_gid
            gids = {(a.camera_id, a.track_id): a.global_id for a in reply.assignments}
            for cam in work.cameras:
                cam.global_ids = np.array([gids.get((cam.camera_id, int(t)), 0) for t in cam.tracks.track_id], np.int64)
            max_gid = max([max_gid, *gids.values()])

        async def open_call():  # type: ignore[no-untyped-def]
            nonlocal endpoint
            endpoint, stub = await self.clients.reid_for(self.id)
            options = struct_pb2.Struct()
            options.update(values | ({"first_global_id": max_gid + 1} if max_gid else {}))
            call = stub.Associate(metadata=self.clients.metadata)
            start = reid_pb2.AssociateStart(session_id=self.id, options=options)
            await call.write(reid_pb2.AssociateRequest(start=start))
            return call

        async def on_failure() -> None:
            await self.clients.reid_replicas.refresh(failed=endpoint)

        await self._stream_stage(self._link("associate", open_call, on_failure), inp, out, request, merge)

    async def _emit(self, inp: asyncio.Queue) -> None:
        last = time.perf_counter()
        while (work := await inp.get()) is not None:
            message, rows = self.render(work)
            self.latest = message
            for cam in work.cameras:
                self.latest_frames[cam.camera_id] = (cam.frame, message["cameras"][cam.camera_id]["tracks"])
            self.frame_ready.set()
            self.frame_ready = asyncio.Event()
            self.steps = work.step
            if self.history is not None:
                self.history.add_rows(rows)
            self._publish(message)
            self._emit_events(self.zone_events.step(work.timestamp_ns, step_floor_points(message)), work.timestamp_ns)
            now = time.perf_counter()
            work.stage_ms["step_interval"] = (now - last) * 1000
            work.stage_ms["latency"] = (now - work.started) * 1000
            last = now
            for k, v in work.stage_ms.items():
                self.stage_ms[k].append(v)
                STAGE_SECONDS.labels(k).observe(v / 1000)

    def render(self, work: StepWork) -> tuple[dict, list[tuple]]:
        """The step message of DESIGN §3 and its track_points rows."""
        cameras, rows = {}, []
        for cam in work.cameras:
            tracks = []
            tr = cam.tracks
            for i in range(len(tr)):
                floor = None
                if cam.floor is not None and cam.floor.valid[i]:
                    floor = [round(float(cam.floor.xy_m[i, 0]), 3), round(float(cam.floor.xy_m[i, 1]), 3)]
                gid = int(cam.global_ids[i]) if cam.global_ids is not None else 0
                bbox = [round(float(v), 1) for v in tr.xyxy[i]]
                tracks.append(
                    {
                        "track_id": int(tr.track_id[i]),
                        "global_id": gid or None,
                        "bbox": bbox,
                        "confidence": round(float(tr.confidence[i]), 3),
                        "floor": floor,
                    }
                )
                rows.append(
                    (
                        ns_to_dt(cam.frame.timestamp_ns),
                        self.id,
                        work.step,
                        cam.camera_id,
                        cam.frame.frame_index,
                        int(tr.track_id[i]),
                        gid or None,
                        bbox,
                        float(tr.confidence[i]),
                        floor[0] if floor else None,
                        floor[1] if floor else None,
                    )
                )
            cameras[cam.camera_id] = {"frame_index": int(cam.frame.frame_index), "tracks": tracks}
        message = {
            "type": "step",
            "session_id": self.id,
            "step": work.step,
            "timestamp": iso(work.timestamp_ns),
            "cameras": cameras,
        }
        return message, rows
