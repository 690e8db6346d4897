"""Each stage's request building and reply merging, as pure functions and small classes (no gRPC calls here).

A stage sends ``xxx_request(work)`` on its stream and hands the reply to ``merge_xxx(work, reply)``, which fills in
that stage's field of every ``CameraInput``.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np
from google.protobuf import struct_pb2

from gateway.identity_embed import IdentityEmbedder
from gateway.work import CameraInput, StepWork
from spoton.domain import Detections, FloorPoints, Tracks, array_to_tensor, boxes_to_proto, tensor_to_rows
from spoton.frames import decode_frame, person_crop
from spoton.v1 import detection_pb2, mapping_pb2, reid_pb2, tracking_pb2

# Track IDs of a camera whose tracker had to start afresh on another replica are offset by this much.
TRACK_ID_EPOCH = 1_000_000
# Each track offers reid a crop for the person's thumbnail when it appears and then every 2 s of media time.
THUMBNAIL_EVERY_NS = 2_000_000_000
# Tracks unseen for this long are forgotten by the thumbnail policy (checked once it holds this many).
THUMBNAIL_FORGET_NS = 60_000_000_000
THUMBNAIL_FORGET_ABOVE = 10_000


# ---- detect --------------------------------------------------------------------------------------------------------
def detect_request(work: StepWork) -> detection_pb2.DetectStreamRequest | None:
    """The scheduled cameras' frames (``cam.detected``); None when the schedule skips every camera this step."""
    frames = [c.frame for c in work.cameras if c.detected]
    if not frames:
        return None
    return detection_pb2.DetectStreamRequest(batch=detection_pb2.FrameBatch(step=work.step, frames=frames))


def merge_detect(work: StepWork, reply: detection_pb2.DetectStreamResponse | None) -> None:
    """Detections of the detected cameras; a skipped camera gets none (and no embeddings)."""
    detected = [c for c in work.cameras if c.detected]
    found = reply.batch.frames if reply is not None else []
    for cam, fd in zip(detected, found, strict=True):
        cam.detections = Detections.from_proto(fd.detections)
    for cam in work.cameras:
        if not cam.detected:
            cam.detections, cam.embeddings = Detections.empty(), np.zeros((0, 0), np.float32)


# ---- embed: tracking embeddings (per detection, only for trackers that use them) ------------------------------------
def embed_request(work: StepWork) -> reid_pb2.EmbedStreamRequest | None:
    """The detected cameras' frames with their boxes; None when no camera was detected this step."""
    items = [
        reid_pb2.FrameBoxes(frame=c.frame, boxes=boxes_to_proto(c.detections.xyxy)) for c in work.cameras if c.detected
    ]
    if not items:
        return None
    return reid_pb2.EmbedStreamRequest(step=work.step, items=items, purpose=reid_pb2.EMBEDDING_PURPOSE_TRACKING)


def no_tracking_embeddings(work: StepWork) -> None:
    """A tracker without an appearance cue (ByteTrack, the default) gets no embeddings: nothing is computed."""
    for cam in work.cameras:
        cam.embeddings = np.zeros((0, 0), np.float32)


def merge_embed(work: StepWork, reply: reid_pb2.EmbedStreamResponse | None) -> None:
    detected = [c for c in work.cameras if c.detected]
    for cam, t in zip(detected, reply.embeddings if reply is not None else [], strict=True):
        cam.embeddings = tensor_to_rows(t, len(cam.detections))


# ---- identity embed: chosen tracks, after tracking -----------------------------------------------------------------
def choose_identity(work: StepWork, identity: IdentityEmbedder) -> None:
    """Set each camera's ``identity`` choices for this step, within the step's cap: cameras with detections, i.e.
    detected ones and skipped ones carrying the previous detections (their tracks are born there too); not frames
    with only predicted boxes."""
    chosen = []
    for cam in work.cameras:
        cam.identity = []
        if cam.tracks is not None and cam.detections is not None:
            chosen += identity.choose(
                cam.camera_id, cam.frame.timestamp_ns, cam.tracks, cam.detections, lambda f=cam.frame: decode_frame(f)
            )
    keep = {id(c) for c in identity.cap(chosen)}
    by_cam = {cam.camera_id: cam for cam in work.cameras}
    for c in chosen:
        if id(c) in keep:
            by_cam[c.camera_id].identity.append(c)
    identity.forget_old(work.timestamp_ns)


def identity_embed_request(work: StepWork) -> reid_pb2.EmbedStreamRequest | None:
    """The chosen tracks' detection boxes with their frames, and every detection of those frames as context (reid
    learns each camera's colour cast from them); None when no track is due this step."""
    items = [
        reid_pb2.FrameBoxes(
            frame=c.frame,
            boxes=boxes_to_proto(np.stack([x.xyxy for x in c.identity])),
            context=boxes_to_proto(c.detections.xyxy) if c.detections is not None else [],
        )
        for c in work.cameras
        if c.identity
    ]
    if not items:
        return None
    return reid_pb2.EmbedStreamRequest(step=work.step, items=items, purpose=reid_pb2.EMBEDDING_PURPOSE_IDENTITY)


def merge_identity_embed(
    work: StepWork, reply: reid_pb2.EmbedStreamResponse | None, identity: IdentityEmbedder
) -> None:
    """Each chosen track's new embedding becomes its latest."""
    cams = [c for c in work.cameras if c.identity]
    for cam, t in zip(cams, reply.embeddings if reply is not None else [], strict=True):
        for choice, row in zip(cam.identity, tensor_to_rows(t, len(cam.identity)), strict=True):
            identity.remember(choice, row, cam.frame.timestamp_ns)


# ---- track (one stream per camera) ---------------------------------------------------------------------------------
def track_start(session_id: str, camera_id: str, tracker: str, options: dict, fps: float) -> tracking_pb2.TrackRequest:
    """The first message of a camera's Track stream."""
    opts = struct_pb2.Struct()
    opts.update(options)
    start = tracking_pb2.TrackStart(
        session_id=session_id, camera_id=camera_id, tracker_type=tracker, options=opts, fps=fps
    )
    return tracking_pb2.TrackRequest(start=start)


def track_request(
    cam: CameraInput, carried: tuple[Detections, np.ndarray] | None = None, births_confirmed_next: bool = False
) -> tracking_pb2.TrackRequest:
    """The camera's detections and embeddings; for a frame the schedule skipped, the ``carried`` detections and
    embeddings (``gateway.schedule.DetectionCarrier``) when given, else a ``predict_only`` frame.
    ``births_confirmed_next``: a detected frame whose detections the next (skipped) frame carries."""
    f = cam.frame
    frame = tracking_pb2.TrackFrame(
        frame_index=f.frame_index,
        timestamp_ns=f.timestamp_ns,
        width=f.width,
        height=f.height,
        births_confirmed_next=births_confirmed_next and cam.detected,
    )
    if cam.detected or carried is not None:
        dets, emb = (cam.detections, cam.embeddings) if cam.detected else carried
        frame.detections.extend(dets.to_proto())
        frame.embeddings.CopyFrom(array_to_tensor(emb))
    else:
        frame.predict_only = True
    return tracking_pb2.TrackRequest(frame=frame)


class TrackIdOffsets:
    """Per camera, the offset added to its tracker's IDs. When a camera's stream was reopened (a new link
    generation) on a replica that did not resume its tracker, its IDs move to a new ``TRACK_ID_EPOCH`` range, so
    they can never be confused with the old tracks in the identity gallery."""

    def __init__(self) -> None:
        self.offsets: dict[str, int] = defaultdict(int)
        self.generations: dict[str, int] = defaultdict(int)

    def merge(self, cam: CameraInput, reply: tracking_pb2.TrackResponse, generation: int) -> None:
        """Set ``cam.tracks`` from a Track reply received on the link's ``generation``."""
        if generation != self.generations[cam.camera_id]:
            self.generations[cam.camera_id] = generation
            if not reply.resumed:
                self.offsets[cam.camera_id] += TRACK_ID_EPOCH
        tracks = Tracks.from_proto(reply.tracks)
        if offset := self.offsets[cam.camera_id]:
            tracks = dataclasses.replace(tracks, track_id=tracks.track_id + offset)
        cam.tracks = tracks


# ---- project -------------------------------------------------------------------------------------------------------
def project_request(work: StepWork, video_set: str, calibrated: set[str]) -> mapping_pb2.ProjectStreamRequest:
    """The calibrated cameras' track boxes (an uncalibrated camera has no floor points)."""
    cameras = [
        mapping_pb2.CameraBoxes(camera_id=c.camera_id, boxes=boxes_to_proto(c.tracks.xyxy))
        for c in work.cameras
        if c.camera_id in calibrated
    ]
    return mapping_pb2.ProjectStreamRequest(step=work.step, video_set=video_set, cameras=cameras)


def merge_project(work: StepWork, reply: mapping_pb2.ProjectStreamResponse) -> None:
    by_cam = {c.camera_id: FloorPoints.from_proto(c.points) for c in reply.cameras}
    for cam in work.cameras:
        cam.floor = by_cam.get(cam.camera_id)


# ---- associate -----------------------------------------------------------------------------------------------------
class ThumbnailPolicy:
    """Which tracks offer reid a crop this step: a new track, then one every ``every_ns`` of media time; none at
    all when ``enabled`` is false (privacy mode that forbids storing faces)."""

    def __init__(self, every_ns: int = THUMBNAIL_EVERY_NS, enabled: bool = True) -> None:
        self.every_ns = every_ns
        self.enabled = enabled
        self.sent: dict[tuple[str, int], int] = {}  # (camera, track) -> media ns of its last crop

    def due(self, camera_id: str, track_id: int, ts_ns: int) -> bool:
        if not self.enabled:
            return False
        return ts_ns - self.sent.get((camera_id, track_id), ts_ns - self.every_ns) >= self.every_ns

    def sent_at(self, camera_id: str, track_id: int, ts_ns: int) -> None:
        self.sent[(camera_id, track_id)] = ts_ns

    def forget_old(self, now_ns: int) -> None:
        """Forget tracks gone for a minute (only once many are held)."""
        if len(self.sent) > THUMBNAIL_FORGET_ABOVE:
            for key in [k for k, t in self.sent.items() if now_ns - t > THUMBNAIL_FORGET_NS]:
                del self.sent[key]


def observations(
    cam: CameraInput, thumbnails: ThumbnailPolicy, identity: IdentityEmbedder
) -> list[reid_pb2.Observation]:
    """One observation per track: its latest identity embedding (if it has one), floor point, and a crop when due."""
    tr, ts = cam.tracks, cam.frame.timestamp_ns
    cut = tr.feet_cut(cam.frame.height)
    image = None
    obs = []
    for i in range(len(tr)):
        tid = int(tr.track_id[i])
        ob = reid_pb2.Observation(camera_id=cam.camera_id, track_id=tid, timestamp_ns=ts, feet_cut=bool(cut[i]))
        emb = identity.latest(cam.camera_id, tid)
        if emb is not None:
            ob.embedding.CopyFrom(array_to_tensor(emb.reshape(1, -1)))
        if cam.floor is not None and cam.floor.valid[i]:
            ob.floor.x_m, ob.floor.y_m = (float(v) for v in cam.floor.xy_m[i])
        if thumbnails.due(cam.camera_id, tid, ts):
            image = decode_frame(cam.frame) if image is None else image
            crop = person_crop(image, tr.xyxy, i)
            if crop is not None:
                ob.crop_jpeg, ob.visibility = crop
                thumbnails.sent_at(cam.camera_id, tid, ts)
        obs.append(ob)
    return obs


def associate_request(
    work: StepWork, thumbnails: ThumbnailPolicy, identity: IdentityEmbedder
) -> reid_pb2.AssociateRequest:
    thumbnails.forget_old(work.timestamp_ns)
    obs = [ob for cam in work.cameras for ob in observations(cam, thumbnails, identity)]
    step = reid_pb2.AssociateStep(step=work.step, timestamp_ns=work.timestamp_ns, observations=obs)
    return reid_pb2.AssociateRequest(step=step)


def associate_final(step: int, timestamp_ns: int) -> reid_pb2.AssociateRequest:
    """The session's last Associate message (after step ``step``): every identity becomes final."""
    return reid_pb2.AssociateRequest(step=reid_pb2.AssociateStep(step=step, timestamp_ns=timestamp_ns, final=True))


def associate_start(
    session_id: str, options: dict, max_global_id: int, video_set: str = "", person_search: bool = False
) -> reid_pb2.AssociateRequest:
    """The first message of the Associate stream. A replica that comes back without the gallery is told the next
    unused global ID, so IDs already in the history are never reused. ``person_search`` (the video set's opt-in)
    has reid keep the session's persons searchable within ``video_set``. ``options["identity_mode"]`` (online |
    window) goes as ``AssociateStart.identity_mode``."""
    values = dict(options)
    mode = str(values.pop("identity_mode", "") or "")
    opts = struct_pb2.Struct()
    opts.update(values | ({"first_global_id": max_global_id + 1} if max_global_id else {}))
    start = reid_pb2.AssociateStart(
        session_id=session_id, options=opts, video_set=video_set, person_search=person_search, identity_mode=mode
    )
    return reid_pb2.AssociateRequest(start=start)


def merge_associate(work: StepWork, reply: reid_pb2.AssociateResponse) -> int:
    """Set every camera's global ids (0 = none); returns the largest global id in the reply (0 if none)."""
    gids = {(a.camera_id, a.track_id): a.global_id for a in reply.assignments}
    for cam in work.cameras:
        cam.global_ids = np.array([gids.get((cam.camera_id, int(t)), 0) for t in cam.tracks.track_id], np.int64)
    return max(gids.values(), default=0)
