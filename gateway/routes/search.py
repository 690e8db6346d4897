"""Person search: "where else was this person?" across the sessions of a video set that opted in (reid_svc's FAISS
index, ``SearchPersons``). Operators only: the answers are biometric."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from starlette.datastructures import UploadFile

from gateway.deps import GatewayDep, Operator
from gateway.errors import ApiError
from spoton.frames import MAX_CROP_BYTES
from spoton.timeutil import ns_to_iso
from spoton.v1 import reid_pb2

router = APIRouter(prefix="/api/v1/search")

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
JPEG_MAGIC = b"\xff\xd8\xff"


class PersonQuery(BaseModel):
    """A known person of a searchable session: who else in the video set looks like them (the person itself is
    left out of the hits)."""

    model_config = ConfigDict(extra="forbid")

    video_set: StrictStr = Field(min_length=1)
    session_id: StrictStr = Field(min_length=1)
    global_id: StrictInt = Field(gt=0, le=INT64_MAX)
    k: StrictInt = Field(10, ge=1, le=INT32_MAX, description="how many hits (reid_svc allows 1..100)")


class CropQuery(BaseModel):
    """An uploaded JPEG crop of one person (multipart ``crop``), searched within ``video_set``."""

    model_config = ConfigDict(extra="forbid")

    video_set: StrictStr = Field(min_length=1)
    k: int = Field(10, ge=1, le=INT32_MAX, description="how many hits (reid_svc allows 1..100)")


_CROP_FORM = {
    "type": "object",
    "required": ["video_set", "crop"],
    "properties": {
        "video_set": {"type": "string", "minLength": 1},
        "k": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
        "crop": {"type": "string", "format": "binary", "description": f"a JPEG, at most {MAX_CROP_BYTES} bytes"},
    },
}
OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": PersonQuery.model_json_schema()},
            "multipart/form-data": {"schema": _CROP_FORM},
        },
    }
}


def _invalid(exc: ValidationError) -> ApiError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return ApiError(400, "invalid_argument", f"{where}: {first.get('msg', 'invalid value')}")


async def parse_query(request: Request) -> tuple[str, reid_pb2.SearchPersonsRequest]:
    """The request body as a ``SearchPersonsRequest`` and the session whose reid replica should answer it ("" for
    a crop: any replica). JSON ``PersonQuery`` or multipart ``CropQuery`` + ``crop``; ApiError 400 otherwise."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = json.loads(await request.body())
            q = PersonQuery.model_validate(body)
        except json.JSONDecodeError as exc:
            raise ApiError(400, "invalid_argument", f"the body is not JSON: {exc}") from None
        except ValidationError as exc:
            raise _invalid(exc) from None
        ref = reid_pb2.PersonRef(session_id=q.session_id, global_id=q.global_id)
        return q.session_id, reid_pb2.SearchPersonsRequest(video_set=q.video_set, person=ref, k=q.k)
    if kind == "multipart/form-data":
        async with request.form(max_files=1, max_fields=4) as form:
            crop = form.get("crop")
            fields = {k: v for k, v in form.items() if k != "crop"}
            if not isinstance(crop, UploadFile):
                raise ApiError(400, "invalid_argument", "crop: a JPEG file is required (multipart field 'crop')")
            try:
                q = CropQuery.model_validate(fields)
            except ValidationError as exc:
                raise _invalid(exc) from None
            jpeg = await crop.read(MAX_CROP_BYTES + 1)
        if len(jpeg) > MAX_CROP_BYTES:
            raise ApiError(413, "too_large", f"crop is larger than {MAX_CROP_BYTES} bytes")
        if not jpeg.startswith(JPEG_MAGIC):
            raise ApiError(400, "invalid_argument", "crop is not a JPEG image")
        return "", reid_pb2.SearchPersonsRequest(video_set=q.video_set, crop_jpeg=jpeg, k=q.k)
    raise ApiError(
        400, "invalid_argument", "send application/json {video_set, session_id, global_id, k} or multipart/form-data"
    )


def hit_json(h: reid_pb2.PersonHit) -> dict:
    """One hit: a person of one session, its cameras, first/last seen (ISO 8601, media time), cosine score, and
    the link to its best crop."""
    return {
        "session_id": h.session_id,
        "global_id": h.global_id,
        "cameras": list(h.camera_ids),
        "first_seen": ns_to_iso(h.first_seen_ns),
        "last_seen": ns_to_iso(h.last_seen_ns),
        "score": round(float(h.score), 4),
        "thumbnail": f"/api/v1/tracking/{h.session_id}/persons/{h.global_id}/thumbnail.jpg",
    }


@router.post("/persons", openapi_extra=OPENAPI, dependencies=[Operator])
async def search_persons(request: Request, gw: GatewayDep) -> dict:
    """Top-k persons of the video set's searchable sessions most like a known person (JSON) or an uploaded JPEG
    crop (multipart), best first. 400 bad input, 404 unknown video set or person, 403 when the video set has not
    opted in (``person_search: true`` in its document), 413 crop over the size limit."""
    session_id, query = await parse_query(request)
    vs = await gw.video_set(query.video_set)
    if not vs.person_search:
        raise ApiError(
            403,
            "person_search_disabled",
            f"video set {vs.name!r} has not opted in to person search (person_search: true in its document)",
        )
    if session_id:
        _, reid = await gw.clients.reid_for(session_id)  # the replica holding the live gallery
    else:
        reid = gw.clients.reid
    reply = await reid.SearchPersons(query, timeout=gw.settings.rpc_timeout_s, metadata=gw.clients.metadata)
    return {
        "video_set": vs.name,
        "indexed_persons": reply.indexed_persons,
        "index_kind": reply.index_kind,
        "hits": [hit_json(h) for h in reply.hits],
    }
