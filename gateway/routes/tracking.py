"""A session's latest step, its global persons (with thumbnails), and operator identity corrections."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from google.protobuf import json_format
from pydantic import BaseModel, Field

from gateway.deps import GatewayDep, Operator
from gateway.errors import ApiError
from gateway.fanout import Fanout
from gateway.render import blur_jpeg
from gateway.settle import REASONS
from gateway.state import Gateway
from spoton.timeutil import ns_to_iso
from spoton.v1 import reid_pb2

router = APIRouter(prefix="/api/v1/tracking/{session_id}")


class MergeBody(BaseModel):
    into: int = Field(gt=0)
    from_: int = Field(gt=0, alias="from")


class SplitBody(BaseModel):
    camera_id: str = Field(min_length=1)
    track_id: int = Field(ge=0)


@router.get("")
async def latest_step(session_id: str, gw: GatewayDep) -> dict:
    if session_id in gw.sessions:
        latest = gw.sessions[session_id].latest
    else:
        await gw.summary(session_id)
        latest = await gw.live.latest(session_id)
    if latest is None:
        raise ApiError(404, "not_found", f"session {session_id} has no step yet")
    return latest


@router.get("/persons")
async def persons(session_id: str, gw: GatewayDep) -> dict:
    """The session's global persons, merges resolved: a person merged into another is listed as part of it
    (``merged_from``), first/last seen and cameras combined; the stored rows keep the ids they were written with."""
    await gw.summary(session_id)
    base = f"/api/v1/tracking/{session_id}/persons"
    merged = await gw.store.merges(session_id)
    folded: dict[int, dict] = {}
    for p in await gw.store.persons(session_id):
        gid = merged.get(p.global_id, p.global_id)
        row = folded.setdefault(
            gid, {"global_id": gid, "first_seen": p.first_seen, "last_seen": p.last_seen, "cameras": set()}
        )
        row["first_seen"], row["last_seen"] = min(row["first_seen"], p.first_seen), max(row["last_seen"], p.last_seen)
        row["cameras"] |= set(p.cameras)
        if gid != p.global_id:
            row.setdefault("merged_from", []).append(p.global_id)
    return {
        "persons": [
            {
                **row,
                "first_seen": row["first_seen"].isoformat(),
                "last_seen": row["last_seen"].isoformat(),
                "cameras": sorted(row["cameras"]),
                "thumbnail": f"{base}/{gid}/thumbnail.jpg",
            }
            for gid, row in sorted(folded.items())
        ]
    }


@router.get("/persons/{global_id}/thumbnail.jpg")
async def person_thumbnail(session_id: str, global_id: int, gw: GatewayDep) -> Response:
    """The person's best crop (largest, sharpest, least occluded), to review a merge or a person-search hit; 404
    when reid has none (unknown, or retired after ``retire_after_s`` unseen and not searchable). Asked of reid
    alone: a searchable session's persons keep their crop in reid's store after the gateway has forgotten the
    session (a restart, Redis's summary expired). In privacy mode it is blurred, or refused (403) with
    ``PRIVACY_THUMBNAILS=refuse``."""
    if not gw.settings.collect_crops:
        raise ApiError(403, "forbidden", "privacy mode: person thumbnails are not kept")
    _, reid = await gw.clients.reid_for(session_id)
    reply = await reid.GetPersonThumbnail(
        reid_pb2.GetPersonThumbnailRequest(session_id=session_id, global_id=global_id),
        timeout=gw.settings.rpc_timeout_s,
        metadata=gw.clients.metadata,
    )
    headers = {"X-Camera-Id": reply.camera_id, "X-Timestamp-Ns": str(reply.timestamp_ns)}
    jpeg = await asyncio.to_thread(blur_jpeg, reply.jpeg) if gw.settings.privacy_mode else reply.jpeg
    return Response(jpeg, media_type="image/jpeg", headers=headers)


@router.post("/persons/merge", dependencies=[Operator])
async def merge_persons(session_id: str, body: MergeBody, gw: GatewayDep) -> dict:
    """Operator correction: person ``from`` is person ``into`` (reid_svc records it; history is not rewritten)."""
    await gw.summary(session_id)
    _, reid = await gw.clients.reid_for(session_id)  # the replica holding the session's gallery
    reply = await reid.MergeIdentities(
        reid_pb2.MergeIdentitiesRequest(session_id=session_id, into_global_id=body.into, from_global_id=body.from_),
        timeout=gw.settings.rpc_timeout_s,
        metadata=gw.clients.metadata,
    )
    changes = [
        identity_change(a.camera_id, a.track_id, body.from_, reply.global_id, reply.since_ns, "merge")
        for a in reply.changed
    ]
    fanout(gw, session_id).identity_update(changes)
    return {"global_id": reply.global_id, "changes": changes}


@router.post("/persons/split", dependencies=[Operator])
async def split_track(session_id: str, body: SplitBody, gw: GatewayDep) -> dict:
    """Operator correction: this camera's track is a person of its own from now on."""
    await gw.summary(session_id)
    _, reid = await gw.clients.reid_for(session_id)
    reply = await reid.SplitTrack(
        reid_pb2.SplitTrackRequest(session_id=session_id, camera_id=body.camera_id, track_id=body.track_id),
        timeout=gw.settings.rpc_timeout_s,
        metadata=gw.clients.metadata,
    )
    changes = [
        identity_change(
            body.camera_id, body.track_id, reply.from_global_id, reply.new_global_id, reply.since_ns, "split"
        )
    ]
    fanout(gw, session_id).identity_update(changes)
    return {"global_id": reply.new_global_id, "changes": changes}


@router.post("/persons/undo", dependencies=[Operator])
async def undo_correction(session_id: str, gw: GatewayDep) -> dict:
    """Operator: undo the session's last merge or split not undone yet (409 when there is none). Made of new
    corrections, history untouched: a split track returns to its person; a merge's tracks leave the person they
    joined as one new person, and reads stop resolving the merged person into the other (reid_svc/undo.py)."""
    await gw.summary(session_id)
    _, reid = await gw.clients.reid_for(session_id)
    reply = await reid.UndoCorrection(
        reid_pb2.UndoCorrectionRequest(session_id=session_id),
        timeout=gw.settings.rpc_timeout_s,
        metadata=gw.clients.metadata,
    )
    changes = [
        identity_change(
            c.camera_id, c.track_id, c.from_global_id, c.to_global_id, reply.since_ns, REASONS.get(c.reason, "merge")
        )
        for c in reply.changes
    ]
    fanout(gw, session_id).identity_update(changes)
    undone = json_format.MessageToDict(reply.undone)
    for key in ("into", "from", "track_id"):
        if key in undone:
            undone[key] = int(undone[key])
    return {"undone": undone, "changes": changes}


def identity_change(camera_id: str, track_id: int, from_gid: int, to_gid: int, since_ns: int, reason: str) -> dict:
    """One row of DESIGN §3's ``identity_update``: this local track shows ``to_gid`` instead of ``from_gid`` from
    ``since`` (media time) on."""
    return {
        "camera_id": camera_id,
        "track_id": int(track_id),
        "from_global_id": int(from_gid),
        "to_global_id": int(to_gid),
        "since": ns_to_iso(since_ns),
        "reason": reason,
    }


def fanout(gw: Gateway, session_id: str) -> Fanout:
    """The session's fan-out on this replica, or (a session another replica runs) one that reaches its
    subscribers through Redis."""
    session = gw.sessions.get(session_id)
    return session.fanout if session is not None else Fanout(session_id, gw.live)
