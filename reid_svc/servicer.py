"""ReidService: embeddings (stateless) and per-session identity galleries (stateful)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

import numpy as np
from google.protobuf import json_format
from prometheus_client import Counter

from reid_svc.config import IDENTITY_MODES, ReidSettings
from reid_svc.embedders import Embedder, build_embedder, crop_boxes, network
from reid_svc.galleries import GalleryStore
from reid_svc.identity import AssociationOptions, IdentityGallery, Observation, thumbnail_score
from reid_svc.search import PersonSearch, gallery_entries, representative
from reid_svc.tracklets import TrackletWindow, WindowOptions, WindowStep
from reid_svc.undo import merge_recorded, undo_last
from spoton.bootstrap.device import pick_device
from spoton.bootstrap.errors import NotFoundError, UnavailableError, stream_errors, unary_errors
from spoton.bootstrap.server import COMPUTE_SECONDS
from spoton.colour import CameraColour
from spoton.domain import array_to_tensor, boxes_from_proto, tensor_to_array
from spoton.frames import MAX_CROP_BYTES, decode_frame
from spoton.v1 import common_pb2, reid_pb2, reid_pb2_grpc

MAX_SEARCH_K = 100
EMBEDDED_CROPS = Counter(
    "spoton_reid_embedded_crops_total", "Person crops embedded by EmbedStream, per purpose", ["purpose"]
)
log = logging.getLogger("reid_svc")


def associate_response(step: int, out: WindowStep) -> reid_pb2.AssociateResponse:
    """One step's reply: live ids, what settled (with the media time up to which everything has) and changes."""
    return reid_pb2.AssociateResponse(
        step=step,
        assignments=[reid_pb2.Assignment(camera_id=c, track_id=t, global_id=g) for c, t, g in out.provisional],
        settled_through_ns=out.through_ns,
        settled=[
            reid_pb2.SettledAssignment(
                camera_id=r.camera_id, track_id=r.track_id, timestamp_ns=r.ts_ns, global_id=r.global_id
            )
            for r in out.settled
        ],
        changes=[
            reid_pb2.IdentityChange(
                camera_id=c.camera_id,
                track_id=c.track_id,
                from_global_id=c.from_global_id,
                to_global_id=c.to_global_id,
                since_ns=c.since_ns,
                reason=reid_pb2.IDENTITY_CHANGE_REASON_SETTLED,
            )
            for c in out.changes
        ],
    )


class ReidServicer(reid_pb2_grpc.ReidServiceServicer):
    def __init__(self, settings: ReidSettings) -> None:
        self.settings = settings
        self.embedder: Embedder | None = None
        self.galleries: dict[str, IdentityGallery] = {}
        # Sessions in window mode: their tracklet window (persisted with the gallery).
        self.windows: dict[str, TrackletWindow] = {}
        self.store: GalleryStore | None = None
        self.search: PersonSearch | None = None
        # Sessions that opted in to person search -> their video set.
        self.searchable: dict[str, str] = {}
        self._tasks: set[asyncio.Task] = set()
        self.default_options = AssociationOptions(
            match_threshold=settings.reid_match_threshold,
            reentry_threshold=settings.reid_reentry_threshold
            if settings.reid_reentry_threshold is not None
            else network(settings.reid_model_type).reentry_threshold,
            max_floor_distance_m=settings.reid_max_floor_distance_m,
            max_speed_mps=settings.reid_max_speed_mps,
            retire_after_s=settings.reid_retire_after_s,
        )
        self.default_window = WindowOptions(window_s=settings.reid_window_s)

    async def load(self) -> None:
        s = self.settings
        if s.database_url:
            self.store = GalleryStore(s.database_url)
            await self.store.start()
        device = pick_device(s.device)
        self.embedder = await asyncio.to_thread(
            build_embedder,
            s.reid_model_type,
            s.reid_weights,
            s.input_wh,
            device,
            s.reid_backend,
            s.reid_threads,
            s.reid_colour_weight,
        )
        info = self.embedder.info
        self.search = PersonSearch(
            self.store,
            f"{info.name}-{info.embedding_dim}",
            info.embedding_dim,
            s.reid_search_exact_max,
            s.reid_search_nprobe,
            s.reid_search_threads,
        )
        if s.reid_search_retention_days > 0:
            task = asyncio.create_task(self._search_retention(), name="search-retention")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _search_retention(self) -> None:
        """Forget search entries of persons last seen more than REID_SEARCH_RETENTION_DAYS ago (wall clock)."""
        while True:
            cutoff = time.time_ns() - int(self.settings.reid_search_retention_days * 86400e9)
            try:
                removed = self.search.expire(cutoff) if self.search else 0
                if self.store is not None:
                    removed = await self.store.expire_search(cutoff)
                if removed:
                    log.info("search retention: removed %d persons", removed)
            except Exception as exc:  # the database may be away; try again next round
                log.warning("search retention failed (will retry): %s", exc)
            await asyncio.sleep(self.settings.reid_search_retention_check_s)

    def _ready(self) -> Embedder:
        if self.embedder is None:
            raise UnavailableError("embedder is still loading")
        return self.embedder

    async def _embed(  # type: ignore[no-untyped-def]
        self, frame: common_pb2.Frame, boxes, colour: CameraColour | None = None, context=()
    ) -> np.ndarray:
        """Embeddings of ``boxes`` in ``frame``; with the colour cue on and a stream's ``colour`` state, the frame's
        ``context`` boxes (else ``boxes``) first update its camera's colour cast, which then corrects the crops."""
        embedder = self._ready()
        xyxy = boxes_from_proto(boxes)
        if not len(xyxy):
            return np.zeros((0, embedder.info.embedding_dim), np.float32)
        image = decode_frame(frame)
        gains = None
        if colour is not None and embedder.colour_weight:
            seen = boxes_from_proto(context) if len(context) else xyxy
            colour.observe(frame.camera_id, crop_boxes(image, seen))
            gains = colour.gains(frame.camera_id)
        emb, _ = await asyncio.to_thread(embedder.embed_boxes, image, xyxy, gains)
        return emb

    @unary_errors
    async def Embed(self, request, context):
        return reid_pb2.EmbedResponse(embeddings=array_to_tensor(await self._embed(request.frame, request.boxes)))

    @stream_errors
    async def EmbedStream(self, request_iterator, context):
        """One step's frames with their boxes -> their embeddings. Identity embeddings (the gateway's budget) are
        timed and counted apart from tracking ones: ``spoton_compute_seconds{method="EmbedStreamIdentity"}`` and
        ``spoton_reid_embedded_crops_total{purpose}``."""
        loop = asyncio.get_running_loop()
        colour = CameraColour()  # each camera's colour cast, learnt over this stream (a session's)
        async for request in request_iterator:
            start = loop.time()
            identity = request.purpose == reid_pb2.EMBEDDING_PURPOSE_IDENTITY
            with COMPUTE_SECONDS.labels("EmbedStreamIdentity" if identity else "EmbedStream").time():
                tensors = [
                    array_to_tensor(await self._embed(item.frame, item.boxes, colour, item.context))
                    for item in request.items
                ]
            crops = sum(len(item.boxes) for item in request.items)
            EMBEDDED_CROPS.labels("identity" if identity else "tracking").inc(crops)
            yield reid_pb2.EmbedStreamResponse(
                step=request.step, embeddings=tensors, inference_ms=(loop.time() - start) * 1000, crops=crops
            )

    @unary_errors
    async def GetModelInfo(self, request, context):
        info = self._ready().info
        return reid_pb2.ReidServiceGetModelInfoResponse(
            info=common_pb2.ModelInfo(
                name=info.name,
                task="reid",
                input_size=list(info.input_wh),
                embedding_dim=info.embedding_dim,
                device=info.device,
                backend=info.backend,
                weights_source=info.weights_source,
            )
        )

    async def _gallery(self, session_id: str) -> IdentityGallery:
        """The session's gallery: in memory, else as another replica last stored it."""
        if not session_id:
            raise ValueError("session_id is required")
        gallery = self.galleries.get(session_id)
        if gallery is None and self.store is not None:
            stored = await self.store.load(session_id)
            if stored is not None:
                gallery, window = stored
                self.galleries[session_id] = gallery
                if window is not None:
                    self.windows[session_id] = window
        if gallery is None:
            raise NotFoundError(f"no gallery for session {session_id!r}")
        return gallery

    async def _persist(self, session_id: str, gallery: IdentityGallery) -> None:
        entries = None
        video_set = self.searchable.get(session_id)
        if video_set is not None and self.search is not None:
            entries = gallery_entries(session_id, gallery, video_set, self.search.model)
            await self.search.update(entries)
        if self.store is not None:
            window = self.windows.get(session_id)
            blob = None if window is None else await asyncio.to_thread(window.to_bytes)
            await self.store.save(session_id, gallery, entries, blob)

    def _modes(self, start: reid_pb2.AssociateStart) -> tuple[AssociationOptions, WindowOptions | None]:
        """The session's online-rule options and, in window mode, its window options (an option of either kind
        may be given; in window mode the window's own fields go to the window)."""
        mode = start.identity_mode or self.settings.reid_identity_mode
        if mode not in IDENTITY_MODES:
            raise ValueError(f"identity_mode must be one of {IDENTITY_MODES}, got {mode!r}")
        values = json_format.MessageToDict(start.options) if start.HasField("options") else {}
        if mode == "online":
            return AssociationOptions.from_dict(self.default_options, values), None
        window_keys = set(WindowOptions.__dataclass_fields__) - {"prior"}
        online_keys = set(AssociationOptions.__dataclass_fields__)
        unknown = set(values) - window_keys - online_keys
        if unknown:
            raise ValueError(f"unknown association options {sorted(unknown)}")
        base = self.default_window
        wopts = dataclasses.replace(
            base, **{k: type(getattr(base, k))(v) for k, v in values.items() if k in window_keys}
        )
        online = {k: v for k, v in values.items() if k in online_keys}
        return AssociationOptions.from_dict(self.default_options, online), wopts

    @stream_errors
    async def Associate(self, request_iterator, context):
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        if first.WhichOneof("payload") != "start":
            raise ValueError("the first Associate message must be an AssociateStart")
        start = first.start
        if not start.session_id:
            raise ValueError("AssociateStart.session_id is required")
        options, window_options = self._modes(start)
        if start.person_search:
            if not start.video_set:
                raise ValueError("AssociateStart.video_set is required with person_search")
            self.searchable[start.session_id] = start.video_set
        try:
            gallery = await self._gallery(start.session_id)
            gallery._next_id = max(gallery._next_id, options.first_global_id)
        except NotFoundError:
            gallery = IdentityGallery(options)
            self.galleries[start.session_id] = gallery
        window = None
        if window_options is not None:
            window = self.windows.get(start.session_id)
            if window is None:
                window = self.windows[start.session_id] = TrackletWindow(window_options)
            window._next_id = max(window._next_id, window_options.first_global_id)
        persisted_ns = 0
        last_ns = 0
        try:
            async for request in self._steps(request_iterator, start.session_id, gallery):
                step, observations, crops = request
                if step.timestamp_ns < last_ns:
                    raise ValueError(f"step {step.step} is older than the previous one (timestamps must not go back)")
                last_ns = step.timestamp_ns
                with COMPUTE_SECONDS.labels("Associate").time():
                    if window is None:
                        assignments = gallery.step(observations)
                        out = WindowStep(assignments, [], [], step.timestamp_ns)
                    else:
                        out = window.step(observations, step.timestamp_ns)
                        if step.final:
                            rows, last = window.flush()
                            out = WindowStep(out.provisional, out.settled + rows, out.changes + last, window.through_ns)
                        assignments = out.provisional
                        gallery.note(assignments, step.timestamp_ns)  # thumbnails and stats of the window's ids
                gids = {(c, t): g for c, t, g in assignments}
                for ob, crop, score in crops:
                    gallery.offer_thumbnail(
                        gids[(ob.camera_id, int(ob.track_id))], crop, score, ob.timestamp_ns, ob.camera_id
                    )
                if step.timestamp_ns - persisted_ns >= self.settings.reid_gallery_persist_s * 1e9 or step.final:
                    await self._persist(start.session_id, gallery)
                    persisted_ns = step.timestamp_ns
                yield associate_response(step.step, out)
        finally:
            if persisted_ns:
                await self._persist(start.session_id, gallery)

    async def _steps(self, request_iterator, session_id: str, gallery: IdentityGallery):  # type: ignore[no-untyped-def]
        """Validated (AssociateStep, observations) pairs of one stream."""
        async for request in request_iterator:
            if request.WhichOneof("payload") != "step":
                raise ValueError("only AssociateStep messages may follow the AssociateStart")
            step = request.step
            window = self.windows.get(session_id)
            dim = gallery.embedding_dim or (window.embedding_dim if window is not None else 0)
            observations, crops = [], []
            for ob in step.observations:
                emb = tensor_to_array(ob.embedding).reshape(-1) if ob.HasField("embedding") else None
                floor = np.array([ob.floor.x_m, ob.floor.y_m]) if ob.HasField("floor") else None
                if floor is not None and not np.isfinite(floor).all():
                    raise ValueError("floor points must be finite")
                if emb is not None and emb.size:
                    if not np.isfinite(emb).all():
                        raise ValueError("embeddings must be finite")
                    if dim and emb.size != dim:
                        raise ValueError(f"embedding has {emb.size} values; this session's have {dim}")
                    dim = emb.size
                observations.append(
                    Observation(
                        ob.camera_id, ob.track_id, ob.timestamp_ns or step.timestamp_ns, emb, floor, ob.feet_cut
                    )
                )
                if ob.crop_jpeg:
                    if len(ob.crop_jpeg) > MAX_CROP_BYTES:
                        raise ValueError(f"crop_jpeg is larger than {MAX_CROP_BYTES} bytes")
                    if not 0.0 <= ob.visibility <= 1.0:
                        raise ValueError("visibility must be in [0, 1]")
                    crops.append((observations[-1], ob.crop_jpeg, thumbnail_score(ob.crop_jpeg, ob.visibility)))
            yield step, observations, crops

    @unary_errors
    async def MergeIdentities(self, request, context):
        gallery = await self._gallery(request.session_id)
        window = self.windows.get(request.session_id)
        if window is None:
            gid, moved, since_ns = merge_recorded(gallery, request.into_global_id, request.from_global_id)
        else:  # the window relabels its tracklets; their changes go out with the next Associate reply
            gid, moved, since_ns = window.merge(request.into_global_id, request.from_global_id), [], 0
            gallery.corrections.append({"kind": "merge", "into": gid, "from": request.from_global_id})
        await self._corrected(request.session_id, gallery)
        changed = [reid_pb2.Assignment(camera_id=c, track_id=t, global_id=gid) for c, t in moved]
        return reid_pb2.MergeIdentitiesResponse(global_id=gid, changed=changed, since_ns=since_ns)

    @unary_errors
    async def SplitTrack(self, request, context):
        gallery = await self._gallery(request.session_id)
        window = self.windows.get(request.session_id)
        if window is None:
            gid = gallery.split(request.camera_id, request.track_id)
        else:
            old, gid = window.split(request.camera_id, request.track_id)
            cam, track = request.camera_id, request.track_id
            gallery.corrections.append({"kind": "split", "camera_id": cam, "track_id": track, "from": old, "into": gid})
        await self._corrected(request.session_id, gallery)
        old = gallery.corrections[-1]["from"]
        person = gallery.persons.get(gid)
        since_ns = person.first_seen_ns if person is not None else 0
        return reid_pb2.SplitTrackResponse(new_global_id=gid, from_global_id=old, since_ns=since_ns)

    @unary_errors
    async def UndoCorrection(self, request, context):
        gallery = await self._gallery(request.session_id)
        done = undo_last(gallery)
        await self._corrected(request.session_id, gallery, len(done.records))
        changes = [
            reid_pb2.IdentityChange(
                camera_id=c,
                track_id=t,
                from_global_id=a,
                to_global_id=b,
                since_ns=done.since_ns,
                reason=reid_pb2.IdentityChangeReason.Value(f"IDENTITY_CHANGE_REASON_{why.upper()}"),
            )
            for c, t, a, b, why in done.changes
        ]
        kind = done.undone["kind"]
        reply = reid_pb2.UndoCorrectionResponse(undone_kind=kind, changes=changes, since_ns=done.since_ns)
        reply.undone.update({k: v for k, v in done.undone.items() if k != "undone"})
        return reply

    async def _corrected(self, session_id: str, gallery: IdentityGallery, count: int = 1) -> None:
        """Record the ``count`` corrections just made (identity_corrections) and the gallery they changed."""
        if self.store is not None:
            for correction in gallery.corrections[-count:]:
                await self.store.add_correction(session_id, correction)
        await self._persist(session_id, gallery)

    @unary_errors
    async def ResetGallery(self, request, context):
        """Forget a session's gallery, its stored copy, corrections and person-search entries: privacy (purge), or
        a fresh start. NOT_FOUND only when nothing at all was kept for the session."""
        if not request.session_id:
            raise ValueError("session_id is required")
        try:
            gallery = await self._gallery(request.session_id)
        except NotFoundError:
            gallery = None
        removed = len(gallery.persons) if gallery is not None else 0
        self.galleries.pop(request.session_id, None)
        self.windows.pop(request.session_id, None)
        self.searchable.pop(request.session_id, None)
        searched = self.search.remove_session(request.session_id) if self.search is not None else 0
        stored = await self.store.delete(request.session_id) if self.store is not None else 0
        if gallery is None and not searched and not stored:
            raise NotFoundError(f"no gallery for session {request.session_id!r}")
        return reid_pb2.ResetGalleryResponse(persons_removed=removed)

    @unary_errors
    async def SearchPersons(self, request, context):
        """The ``k`` persons of the video set's searchable sessions closest in appearance to the query."""
        embedder = self._ready()
        if not request.video_set:
            raise ValueError("video_set is required")
        k = request.k or 10
        if not 1 <= k <= MAX_SEARCH_K:
            raise ValueError(f"k must be in 1..{MAX_SEARCH_K}")
        index = await self.search.index(request.video_set)
        exclude = None
        kind = request.WhichOneof("query")
        if kind == "person":
            ref = request.person
            if not ref.session_id:
                raise ValueError("person.session_id is required")
            exclude = (ref.session_id, int(ref.global_id))
            query = await self._person_vector(ref.session_id, int(ref.global_id), request.video_set)
        elif kind == "crop_jpeg":
            if len(request.crop_jpeg) > MAX_CROP_BYTES:
                raise ValueError(f"crop_jpeg is larger than {MAX_CROP_BYTES} bytes")
            # The shared decoder: it refuses a header that claims more pixels than a frame may have.
            crop = decode_frame(common_pb2.Frame(encoding=common_pb2.FRAME_ENCODING_JPEG, data=request.crop_jpeg))
            query = (await asyncio.to_thread(embedder.embed, [crop]))[0]
        else:
            raise ValueError("a query is required: person {session_id, global_id} or crop_jpeg")
        hits = await asyncio.to_thread(index.search, query, k, exclude)
        return reid_pb2.SearchPersonsResponse(
            hits=[
                reid_pb2.PersonHit(
                    session_id=h.sighting.session_id,
                    global_id=h.sighting.global_id,
                    camera_ids=list(h.sighting.camera_ids),
                    first_seen_ns=h.sighting.first_seen_ns,
                    last_seen_ns=h.sighting.last_seen_ns,
                    score=h.score,
                )
                for h in hits
            ],
            indexed_persons=len(index),
            index_kind=index.kind,
        )

    async def _person_vector(self, session_id: str, global_id: int, video_set: str) -> np.ndarray:
        """A known person's representative embedding: its live gallery bank, else its stored search entry."""
        gallery = self.galleries.get(session_id)
        person = gallery.persons.get(global_id) if gallery is not None else None
        if person is not None and self.searchable.get(session_id) == video_set:
            vector = representative(person.bank)
            if vector is not None:
                return vector
        vector = (await self.search.index(video_set)).vector((session_id, global_id))
        if vector is None and self.store is not None:
            row = await self.store.search_person(session_id, global_id, self.search.model)
            vector = row[1] if row is not None and row[0] == video_set else None
        if vector is None:
            raise NotFoundError(f"person {global_id} of session {session_id!r} is not searchable in {video_set!r}")
        return vector

    @unary_errors
    async def GetPersonThumbnail(self, request, context):
        """The person's best crop so far (largest, sharpest, least occluded), for operators reviewing a merge or a
        search hit (a searchable session's person keeps it after retiring from the gallery)."""
        try:
            person = (await self._gallery(request.session_id)).persons.get(request.global_id)
        except NotFoundError:
            person = None
        t = person.thumbnail if person is not None else None
        if t is None and self.store is not None:
            t = await self.store.search_thumbnail(request.session_id, int(request.global_id))
        if t is None:
            if person is None:
                raise NotFoundError(f"no person {request.global_id} in session {request.session_id!r}")
            raise NotFoundError(f"person {request.global_id} has no thumbnail yet")
        return reid_pb2.GetPersonThumbnailResponse(jpeg=t.jpeg, timestamp_ns=t.timestamp_ns, camera_id=t.camera_id)

    @unary_errors
    async def PurgeHistory(self, request, context):
        """Retention or purge of reid's tables: one session's gallery and corrections (memory too), or every
        gallery not updated for ``older_than_s`` and every correction older than that."""
        scope = request.WhichOneof("scope")
        if scope == "session_id":
            if not request.session_id:
                raise ValueError("session_id is required")
            in_memory = self.galleries.pop(request.session_id, None) is not None
            self.windows.pop(request.session_id, None)
            self.searchable.pop(request.session_id, None)
            if self.search is not None:
                self.search.remove_session(request.session_id)
            galleries, corrections = (
                await self.store.purge_session(request.session_id) if self.store is not None else (0, 0)
            )
            return reid_pb2.PurgeHistoryResponse(
                galleries_deleted=max(galleries, int(in_memory)), corrections_deleted=corrections
            )
        if scope != "older_than_s" or not request.older_than_s > 0:
            raise ValueError("give a session_id or older_than_s > 0")
        if self.store is None:
            return reid_pb2.PurgeHistoryResponse()
        sessions, corrections = await self.store.purge_older(request.older_than_s)
        for sid in sessions:  # an expired gallery held here (a session long idle) goes from memory as well
            self.galleries.pop(sid, None)
            self.windows.pop(sid, None)
            self.searchable.pop(sid, None)
        return reid_pb2.PurgeHistoryResponse(galleries_deleted=len(sessions), corrections_deleted=corrections)

    @unary_errors
    async def GetGalleryStats(self, request, context):
        return reid_pb2.GetGalleryStatsResponse(**(await self._gallery(request.session_id)).stats())
