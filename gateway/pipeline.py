"""One session's pipeline: sources -> detection -> [reid tracking embeddings] -> tracking -> reid identity
embeddings -> mapping -> reid associate -> out.

Tracking embeddings (one per detection) are only computed for trackers that use them (BoT-SORT, …; not
ByteTrack, the default); identity embeddings are computed per track, after tracking, for the tracks the session's
budget chooses (``gateway.identity_embed``), and association gets each track's latest one.
Each stage is a coroutine that owns one gRPC stream and passes ``StepWork`` on through a bounded queue, so step
t+1 is being detected while step t is tracked and associated (pipelining), and no stage runs ahead unboundedly.
``Session`` only orchestrates: the reader (``gateway.reader``), the stages (``gateway.stages``, with the pure
request building of ``gateway.requests``), the typed step result (``gateway.step``), fan-out
(``gateway.fanout``) and history (``gateway.history``) each live in their own module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict, deque

import grpc
import numpy as np
from prometheus_client import Histogram

from gateway.clients import ServiceClients
from gateway.config import GatewaySettings
from gateway.events import ZoneEvent, ZoneEventDetector
from gateway.fanout import Fanout
from gateway.history import HistoryWriter
from gateway.identity_embed import IdentityEmbedder
from gateway.live import RedisLive
from gateway.messages import session_ended
from gateway.options import SessionConfig
from gateway.reader import CameraProgress, Playback, StepReader, open_sources
from gateway.rows import AlertRow, ZoneEventRow
from gateway.rules import Alert, RuleEngine
from gateway.schedule import DetectionSchedule
from gateway.settle import Settlement, SettlingHistory
from gateway.sources import is_live
from gateway.stages import Stages
from gateway.step import StepResult
from gateway.work import StepWork
from spoton.bootstrap.logs import log_event
from spoton.timeutil import ns_to_dt, ns_to_iso
from spoton.v1 import common_pb2, mapping_pb2
from spoton.videoset import VideoSet

log = logging.getLogger("gateway.pipeline")

QUEUE_DEPTH = 3
# Read frames wait for the detector in a queue of one: the detector always has its next step ready, and a step
# is never read long before it can be detected (step latency stays near two detector passes, not five).
READ_QUEUE_DEPTH = 1
# The summary is shared with the other replicas every this many steps (and when the session ends).
SUMMARY_EVERY_STEPS = 10
STAT_WINDOW = 5000
STAGE_SECONDS = Histogram(
    "spoton_gateway_stage_seconds",
    "Wall time of each pipeline stage per step (gRPC round trip included)",
    ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class Session:
    """A running (or finished) session: its pipeline task, progress, latest step and subscribers.

    ``options`` are the request's (kept as given, for the sessions table); ``config`` is what the session runs
    with, resolved once over the gateway's settings.
    """

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
        self.video_set = video_set
        self.camera_ids = camera_ids
        self.options = options
        self.config = SessionConfig.resolve(options, settings)
        self.schedule = DetectionSchedule(self.config.schedule)
        self.identity: IdentityEmbedder | None = None  # the identity-embedding budget's state, once running
        self.clients = clients
        self.history = history
        self.fanout = Fanout(self.id, live, settings.alert_webhook_url)
        self.status = "starting"
        self.created_at = time.time()
        self.media_start_ns = self.config.media_start_ns
        self.steps = 0
        self.last_error: str | None = None
        self.latest: dict | None = None
        self.progress = {c: CameraProgress() for c in camera_ids}
        self.stage_ms: dict[str, deque] = defaultdict(lambda: deque(maxlen=STAT_WINDOW))
        self.frame_bytes: deque = deque(maxlen=STAT_WINDOW)
        self.reconnects: dict[str, int] = defaultdict(int)
        # Latest encoded frame and its tracks per camera, for the annotated MJPEG stream.
        self.latest_frames: dict[str, tuple[common_pb2.Frame, list[dict]]] = {}
        self.frame_ready = asyncio.Event()
        self.zone_events = ZoneEventDetector(video_set)
        # History waits for settled ids (gateway.settle); its zone events are detected on the settled steps.
        self.settling = SettlingHistory()
        self.stored_zone_events = ZoneEventDetector(video_set)
        self.rules = RuleEngine(video_set.rules)
        self.event_counts: dict[str, int] = defaultdict(int)
        self.calibrated: set[str] = set()
        self.playback = Playback()
        self.has_live_sources = any(is_live(video_set.source_uri(video_set.camera(c))) for c in camera_ids)
        self._started_mono = time.monotonic()
        self._finished_mono: float | None = None
        self._task: asyncio.Task | None = None
        self.done = asyncio.Event()

    # ---- what app.py reads ------------------------------------------------------------------------------------
    @property
    def subscribers(self) -> set[asyncio.Queue]:
        return self.fanout.subscribers

    @property
    def event_subscribers(self) -> set[asyncio.Queue]:
        return self.fanout.event_subscribers

    @property
    def webhook_failures(self) -> int:
        return self.fanout.webhook_failures

    def subscribe(self, events: bool = False) -> asyncio.Queue:
        return self.fanout.subscribe(events)

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.fanout.unsubscribe(q)

    def ended_message(self) -> dict:
        return session_ended(self.id, self.status, self.steps, self.last_error)

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
        self.playback.resumed.clear()
        if self.status == "running":
            self.status = "paused"

    def resume(self) -> None:
        self.playback.resumed.set()
        if self.status == "paused":
            self.status = "running"

    def seek(self, frame_index: int) -> None:
        """Continue every camera from this 1-based source frame (applied before the next step)."""
        self._require_files("seek")
        if frame_index < 1:
            raise ValueError("frame_index must be >= 1")
        self.playback.seek_to = frame_index

    def _require_files(self, what: str) -> None:
        if self.has_live_sources:
            raise ValueError(f"cannot {what} a session with live sources")
        if self.done.is_set():
            raise ValueError(f"cannot {what} a session that has ended")

    @property
    def steps_per_s(self) -> float:
        end = self._finished_mono or time.monotonic()
        return self.steps / max(end - self._started_mono, 1e-9)

    def summary(self) -> dict:
        stage_ms = {k: np.asarray(v) for k, v in self.stage_ms.items() if v}
        return {
            "session_id": self.id,
            "video_set": self.video_set.name,
            "cameras": self.camera_ids,
            "status": self.status,
            "created_at": self.created_at,
            "steps": self.steps,
            "steps_per_s": round(self.steps_per_s, 3),
            "camera_frames_per_s": round(self.steps_per_s * len(self.camera_ids), 3),
            "progress": {c: p.to_dict() for c, p in self.progress.items()},
            "dropped_frames": sum(p.dropped for p in self.progress.values()),
            "paused": self.playback.paused,
            "events": dict(self.event_counts),
            "reconnects": dict(self.reconnects),
            "stage_ms": {k: round(float(np.mean(v)), 2) for k, v in stage_ms.items()},
            "stage_p50_ms": {k: round(float(np.percentile(v, 50)), 2) for k, v in stage_ms.items()},
            "stage_p95_ms": {k: round(float(np.percentile(v, 95)), 2) for k, v in stage_ms.items()},
            "detection": self.schedule.summary(),
            "identity_embeddings": self._identity_summary(),
            "frame_bytes_per_step": round(float(np.mean(self.frame_bytes)), 1) if self.frame_bytes else 0.0,
            "last_error": self.last_error,
            "media_start": ns_to_iso(self.media_start_ns),
        }

    def _identity_summary(self) -> dict:
        """Identity embeddings computed so far and the tracked detections ``every`` would have embedded."""
        ie = self.identity
        if ie is None:
            return {"mode": self.config.identity.mode, "embedded": 0, "candidates": 0, "per_step": 0.0}
        return {
            "mode": ie.budget.mode,
            "embedded": ie.embedded,
            "candidates": ie.candidates,
            "per_step": round(ie.embedded / max(self.steps, 1), 3),
        }

    # ---- pipeline --------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        sources: dict = {}
        try:
            sources, fps = await asyncio.to_thread(
                open_sources, self.video_set, self.camera_ids, self.config, self.progress
            )
            await self._check_calibrations()
            self.status = "running"
            self.fanout.summary(self.summary)
            log_event(
                log,
                "session started",
                session_id=self.id,
                video_set=self.video_set.name,
                cameras=",".join(self.camera_ids),
            )
            reader = StepReader(sources, fps, self.progress, self.config, self.playback)
            await self._run_stages(reader, fps)
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
            self._end()

    async def _run_stages(self, reader: StepReader, fps: dict[str, float]) -> None:
        """Every stage as a task, joined by bounded queues; the first one to fail cancels the others."""
        stages = Stages(self.id, self.clients, self.config, self._on_reconnect, self.schedule)
        self.identity = stages.identity
        tracking_embeddings = await stages.tracker_uses_embeddings()
        q = [asyncio.Queue(READ_QUEUE_DEPTH)] + [asyncio.Queue(QUEUE_DEPTH) for _ in range(6)]
        coroutines = [
            reader.run(q[0], lambda work: self.frame_bytes.append(sum(len(c.frame.data) for c in work.cameras))),
            stages.detect(q[0], q[1]),
            stages.embed(q[1], q[2], tracking_embeddings),
            stages.track(q[2], q[3], fps),
            stages.identity_embed(q[3], q[4]),
            stages.project(q[4], q[5], self.video_set.name, self.calibrated),
            stages.associate(q[5], q[6], self.video_set.name, self.video_set.person_search),
            self._emit(q[6]),
        ]
        tasks = [asyncio.create_task(c) for c in coroutines]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()

    def _end(self) -> None:
        self._events(self.zone_events.finish())
        self._store(self.settling.flush())
        self._store_events(self.stored_zone_events.finish())
        self._finished_mono = time.monotonic()
        self.fanout.ended(self.ended_message(), self.summary)
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
                    timeout=self.config.rpc_timeout_s,
                    metadata=self.clients.metadata,
                )
                self.calibrated.add(cam)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise

    def _on_reconnect(self, name: str, error: str) -> None:
        self.reconnects[name] += 1
        log_event(log, "stage reconnecting", level=logging.WARNING, session_id=self.id, stage=name, error=error)

    # ---- out -------------------------------------------------------------------------------------------------
    async def _emit(self, inp: asyncio.Queue) -> None:
        last = time.perf_counter()
        while (work := await inp.get()) is not None:
            if work.final:  # the end-of-session settlement, no step of its own
                if work.settlement is not None:
                    self._settle(work.settlement)
                continue
            self._publish_step(work, work.result or work.finish(self.id))
            if work.settlement is not None:  # after the step message: identity_update follows the ids it changes
                self._settle(work.settlement)
            now = time.perf_counter()
            work.stage_ms["step_interval"] = (now - last) * 1000
            work.stage_ms["latency"] = (now - work.started) * 1000
            last = now
            for k, v in work.stage_ms.items():
                self.stage_ms[k].append(v)
                STAGE_SECONDS.labels(k).observe(v / 1000)

    def _publish_step(self, work: StepWork, result: StepResult) -> None:
        """A step's result to everything derived from it: the latest message and frames, history, subscribers,
        zone events and alerts."""
        message = result.message()
        self.latest = message
        for cam in work.cameras:
            self.latest_frames[cam.camera_id] = (cam.frame, message["cameras"][cam.camera_id]["tracks"])
        self.frame_ready.set()
        self.frame_ready = asyncio.Event()
        self.steps = result.step
        released = self.settling.add(result)
        if self.history is not None and self.settling.waiting and self.settling.waiting[-1] is result:
            self.history.hold(result.track_points())  # spooled while it waits: a dead gateway loses none
        self._store(released)
        if self.steps % SUMMARY_EVERY_STEPS == 1:
            self.fanout.summary(self.summary)
        self.fanout.step(message)
        events = self.zone_events.step(result.timestamp_ns, result.floor_points())
        self._alerts(self.rules.step(result.timestamp_ns, events))  # alerts go out before the events behind them
        self._events(events)

    def _settle(self, settlement: Settlement) -> None:
        """IDs already sent that changed go out as ``identity_update``; steps now settled go to history."""
        self.fanout.identity_update([c.to_dict() for c in settlement.changes])
        self._store(self.settling.settle(settlement))

    def _store(self, results: list[StepResult]) -> None:
        """Settled steps to history: track points (persons follow) and the zone events of their settled ids."""
        if self.history is None:
            return
        for r in results:
            self.history.add_rows(r.track_points())
            self._store_events(self.stored_zone_events.step(r.timestamp_ns, r.floor_points()))

    def _store_events(self, events: list[ZoneEvent]) -> None:
        if self.history is not None and events:
            self.history.add_events(
                [ZoneEventRow(ns_to_dt(e.timestamp_ns), self.id, e.zone_id, e.global_id, e.kind) for e in events]
            )

    def _events(self, events: list[ZoneEvent]) -> None:
        """Live zone events (provisional ids): counted and fanned out; history stores the settled ones."""
        for e in events:
            self.event_counts[e.kind] += 1
            self.fanout.event(e.to_dict(self.id))

    def _alerts(self, alerts: list[Alert]) -> None:
        if self.history is not None and alerts:
            self.history.add_alerts(
                [
                    AlertRow(
                        ns_to_dt(a.timestamp_ns), self.id, a.rule_id, a.kind, a.target, a.global_id, a.value, a.message
                    )
                    for a in alerts
                ]
            )
        for a in alerts:
            self.event_counts["alert"] += 1
            self.fanout.alert(a.to_dict(self.id))
