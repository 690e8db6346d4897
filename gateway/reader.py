"""The pipeline's first stage: a session's sources opened, read one step at a time and encoded for the stages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.options import SessionConfig
from gateway.schedule import flow_grey, motion_thumb
from gateway.sources import LiveSource, SourceFrame, VideoSource, is_live
from gateway.work import CameraInput, StepWork
from spoton.frames import encode_frame
from spoton.v1 import common_pb2
from spoton.videoset import VideoSet

FRAME_ENCODINGS = {
    "jpeg": common_pb2.FRAME_ENCODING_JPEG,
    "png": common_pb2.FRAME_ENCODING_PNG,
    "raw": common_pb2.FRAME_ENCODING_RAW_BGR8,
}
DEFAULT_FPS = 25.0


@dataclass
class CameraProgress:
    frames: int = 0
    last_frame_index: int = 0
    frame_count: int = 0
    state: str = "starting"  # file | ended | connecting | live | reconnecting | stalled
    dropped: int = 0
    reconnects: int = 0
    ended: bool = False

    def to_dict(self) -> dict:
        return {
            "frames": self.frames,
            "last_frame_index": self.last_frame_index,
            "frame_count": self.frame_count,
            "ended": self.ended,
            "state": self.state,
            "dropped_frames": self.dropped,
            "source_reconnects": self.reconnects,
        }


class Playback:
    """Pause and seek requests for a session's file sources (applied by the reader before its next step)."""

    def __init__(self) -> None:
        self.resumed = asyncio.Event()
        self.resumed.set()
        self.seek_to: int | None = None

    @property
    def paused(self) -> bool:
        return not self.resumed.is_set()

    def take_seek(self) -> int | None:
        target, self.seek_to = self.seek_to, None
        return target


Source = VideoSource | LiveSource


def open_sources(
    video_set: VideoSet, camera_ids: list[str], config: SessionConfig, progress: dict[str, CameraProgress]
) -> tuple[dict[str, Source], dict[str, float]]:
    """Open every camera's source (blocking). Returns the sources and each camera's native frame rate; file sources
    sample every ``round(native / target_fps)``-th frame."""
    sources: dict[str, Source] = {}
    fps: dict[str, float] = {}
    try:
        for cam_id in camera_ids:
            cam = video_set.camera(cam_id)
            uri = video_set.source_uri(cam)
            if is_live(uri):
                sources[cam_id] = LiveSource(uri)
                fps[cam_id] = cam.fps or sources[cam_id].fps or DEFAULT_FPS
                continue
            probe = VideoSource(uri)
            native = cam.fps or probe.fps or DEFAULT_FPS
            probe.close()
            stride = max(1, round(native / config.target_fps)) if config.target_fps else 1
            sources[cam_id] = VideoSource(uri, stride, config.loop)
            fps[cam_id] = native
            progress[cam_id].frame_count = sources[cam_id].frame_count
    except BaseException:
        for src in sources.values():
            src.close()
        raise
    return sources, fps


class StepReader:
    """One step per instant. Files advance in lockstep, one sampled frame per camera per step; live cameras give
    their newest frame (the ones the pipeline was too slow for are dropped and counted), and a camera that has
    nothing new is left out of the step rather than holding the others up."""

    def __init__(
        self,
        sources: dict[str, Source],
        fps: dict[str, float],
        progress: dict[str, CameraProgress],
        config: SessionConfig,
        playback: Playback,
    ) -> None:
        self.sources = sources
        self.fps = fps
        self.progress = progress
        self.config = config
        self.playback = playback
        self.has_live = any(isinstance(s, LiveSource) for s in sources.values())
        self._encoding = FRAME_ENCODINGS[config.frame_encoding]

    def _encode(self, cam_id: str, sf: SourceFrame) -> CameraInput:
        ts = sf.captured_ns or self.config.media_start_ns + round((sf.media_index - 1) / self.fps[cam_id] * 1e9)
        frame = encode_frame(
            sf.image, cam_id, sf.frame_index, ts, self._encoding, jpeg_quality=self.config.jpeg_quality
        )
        p = self.progress[cam_id]
        p.frames += 1
        p.last_frame_index = sf.frame_index
        thumb = motion_thumb(sf.image) if self.config.schedule.mode == "motion" else None
        grey = flow_grey(sf.image) if self.config.schedule.uses_flow else None
        return CameraInput(cam_id, frame, thumb=thumb, grey=grey)

    def read_step(self) -> list[CameraInput]:
        """Every camera's frame for the next step (blocking: decode and encode)."""
        items = []
        for cam_id, src in self.sources.items():
            p = self.progress[cam_id]
            if isinstance(src, LiveSource):
                sf = src.take()
                p.dropped, p.reconnects = src.dropped, src.reconnects
                p.state = src.state if src.state != "live" or sf is not None else "stalled"
                if sf is not None:
                    items.append(self._encode(cam_id, sf))
                continue
            if p.ended:
                continue
            sf = src.read()
            if sf is None:
                p.ended, p.state = True, "ended"
                continue
            p.state = "file"
            items.append(self._encode(cam_id, sf))
        return items

    async def _seek(self, frame_index: int) -> None:
        for cam_id, src in self.sources.items():
            if isinstance(src, VideoSource):
                await asyncio.to_thread(src.seek, min(frame_index, src.frame_count or frame_index))
                self.progress[cam_id].ended = False

    async def run(self, out: asyncio.Queue, on_step: Callable[[StepWork], None]) -> None:
        """Put one ``StepWork`` per step on ``out`` until the sources end or ``max_steps``; then ``None``."""
        live_period = 1.0 / (self.config.target_fps or max(self.fps.values(), default=DEFAULT_FPS))
        step = 0
        next_tick = time.monotonic()
        while not self.config.max_steps or step < self.config.max_steps:
            await self.playback.resumed.wait()
            if (target := self.playback.take_seek()) is not None:
                await self._seek(target)
            if self.has_live:
                next_tick += live_period
                await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
                next_tick = max(next_tick, time.monotonic() - live_period)
            t0 = time.perf_counter()
            cameras = await asyncio.to_thread(self.read_step)
            if not cameras:
                if self.has_live:
                    continue
                break
            step += 1
            work = StepWork(step, max(c.frame.timestamp_ns for c in cameras), cameras, started=t0)
            work.stage_ms["decode"] = (time.perf_counter() - t0) * 1000
            on_step(work)
            await out.put(work)
        await out.put(None)
