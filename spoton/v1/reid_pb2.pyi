from google.protobuf import struct_pb2 as _struct_pb2
from spoton.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EmbeddingPurpose(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EMBEDDING_PURPOSE_UNSPECIFIED: _ClassVar[EmbeddingPurpose]
    EMBEDDING_PURPOSE_TRACKING: _ClassVar[EmbeddingPurpose]
    EMBEDDING_PURPOSE_IDENTITY: _ClassVar[EmbeddingPurpose]

class IdentityChangeReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IDENTITY_CHANGE_REASON_UNSPECIFIED: _ClassVar[IdentityChangeReason]
    IDENTITY_CHANGE_REASON_SETTLED: _ClassVar[IdentityChangeReason]
    IDENTITY_CHANGE_REASON_MERGE: _ClassVar[IdentityChangeReason]
    IDENTITY_CHANGE_REASON_SPLIT: _ClassVar[IdentityChangeReason]
EMBEDDING_PURPOSE_UNSPECIFIED: EmbeddingPurpose
EMBEDDING_PURPOSE_TRACKING: EmbeddingPurpose
EMBEDDING_PURPOSE_IDENTITY: EmbeddingPurpose
IDENTITY_CHANGE_REASON_UNSPECIFIED: IdentityChangeReason
IDENTITY_CHANGE_REASON_SETTLED: IdentityChangeReason
IDENTITY_CHANGE_REASON_MERGE: IdentityChangeReason
IDENTITY_CHANGE_REASON_SPLIT: IdentityChangeReason

class FrameBoxes(_message.Message):
    __slots__ = ("frame", "boxes", "context")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    BOXES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    frame: _common_pb2.Frame
    boxes: _containers.RepeatedCompositeFieldContainer[_common_pb2.BBox]
    context: _containers.RepeatedCompositeFieldContainer[_common_pb2.BBox]
    def __init__(self, frame: _Optional[_Union[_common_pb2.Frame, _Mapping]] = ..., boxes: _Optional[_Iterable[_Union[_common_pb2.BBox, _Mapping]]] = ..., context: _Optional[_Iterable[_Union[_common_pb2.BBox, _Mapping]]] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("frame", "boxes")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    BOXES_FIELD_NUMBER: _ClassVar[int]
    frame: _common_pb2.Frame
    boxes: _containers.RepeatedCompositeFieldContainer[_common_pb2.BBox]
    def __init__(self, frame: _Optional[_Union[_common_pb2.Frame, _Mapping]] = ..., boxes: _Optional[_Iterable[_Union[_common_pb2.BBox, _Mapping]]] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("embeddings",)
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    embeddings: _common_pb2.Tensor
    def __init__(self, embeddings: _Optional[_Union[_common_pb2.Tensor, _Mapping]] = ...) -> None: ...

class EmbedStreamRequest(_message.Message):
    __slots__ = ("step", "items", "purpose")
    STEP_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    step: int
    items: _containers.RepeatedCompositeFieldContainer[FrameBoxes]
    purpose: EmbeddingPurpose
    def __init__(self, step: _Optional[int] = ..., items: _Optional[_Iterable[_Union[FrameBoxes, _Mapping]]] = ..., purpose: _Optional[_Union[EmbeddingPurpose, str]] = ...) -> None: ...

class EmbedStreamResponse(_message.Message):
    __slots__ = ("step", "embeddings", "inference_ms", "crops")
    STEP_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    CROPS_FIELD_NUMBER: _ClassVar[int]
    step: int
    embeddings: _containers.RepeatedCompositeFieldContainer[_common_pb2.Tensor]
    inference_ms: float
    crops: int
    def __init__(self, step: _Optional[int] = ..., embeddings: _Optional[_Iterable[_Union[_common_pb2.Tensor, _Mapping]]] = ..., inference_ms: _Optional[float] = ..., crops: _Optional[int] = ...) -> None: ...

class ReidServiceGetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReidServiceGetModelInfoResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: _common_pb2.ModelInfo
    def __init__(self, info: _Optional[_Union[_common_pb2.ModelInfo, _Mapping]] = ...) -> None: ...

class AssociateStart(_message.Message):
    __slots__ = ("session_id", "options", "video_set", "person_search", "identity_mode")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    VIDEO_SET_FIELD_NUMBER: _ClassVar[int]
    PERSON_SEARCH_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_MODE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    options: _struct_pb2.Struct
    video_set: str
    person_search: bool
    identity_mode: str
    def __init__(self, session_id: _Optional[str] = ..., options: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., video_set: _Optional[str] = ..., person_search: _Optional[bool] = ..., identity_mode: _Optional[str] = ...) -> None: ...

class Observation(_message.Message):
    __slots__ = ("camera_id", "track_id", "timestamp_ns", "embedding", "floor", "crop_jpeg", "visibility", "feet_cut")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    FLOOR_FIELD_NUMBER: _ClassVar[int]
    CROP_JPEG_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    FEET_CUT_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    track_id: int
    timestamp_ns: int
    embedding: _common_pb2.Tensor
    floor: _common_pb2.FloorPoint
    crop_jpeg: bytes
    visibility: float
    feet_cut: bool
    def __init__(self, camera_id: _Optional[str] = ..., track_id: _Optional[int] = ..., timestamp_ns: _Optional[int] = ..., embedding: _Optional[_Union[_common_pb2.Tensor, _Mapping]] = ..., floor: _Optional[_Union[_common_pb2.FloorPoint, _Mapping]] = ..., crop_jpeg: _Optional[bytes] = ..., visibility: _Optional[float] = ..., feet_cut: _Optional[bool] = ...) -> None: ...

class AssociateStep(_message.Message):
    __slots__ = ("step", "timestamp_ns", "observations", "final")
    STEP_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    step: int
    timestamp_ns: int
    observations: _containers.RepeatedCompositeFieldContainer[Observation]
    final: bool
    def __init__(self, step: _Optional[int] = ..., timestamp_ns: _Optional[int] = ..., observations: _Optional[_Iterable[_Union[Observation, _Mapping]]] = ..., final: _Optional[bool] = ...) -> None: ...

class AssociateRequest(_message.Message):
    __slots__ = ("start", "step")
    START_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    start: AssociateStart
    step: AssociateStep
    def __init__(self, start: _Optional[_Union[AssociateStart, _Mapping]] = ..., step: _Optional[_Union[AssociateStep, _Mapping]] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("camera_id", "track_id", "global_id")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_ID_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    track_id: int
    global_id: int
    def __init__(self, camera_id: _Optional[str] = ..., track_id: _Optional[int] = ..., global_id: _Optional[int] = ...) -> None: ...

class SettledAssignment(_message.Message):
    __slots__ = ("camera_id", "track_id", "timestamp_ns", "global_id")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_ID_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    track_id: int
    timestamp_ns: int
    global_id: int
    def __init__(self, camera_id: _Optional[str] = ..., track_id: _Optional[int] = ..., timestamp_ns: _Optional[int] = ..., global_id: _Optional[int] = ...) -> None: ...

class IdentityChange(_message.Message):
    __slots__ = ("camera_id", "track_id", "from_global_id", "to_global_id", "since_ns", "reason")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_GLOBAL_ID_FIELD_NUMBER: _ClassVar[int]
    TO_GLOBAL_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    track_id: int
    from_global_id: int
    to_global_id: int
    since_ns: int
    reason: IdentityChangeReason
    def __init__(self, camera_id: _Optional[str] = ..., track_id: _Optional[int] = ..., from_global_id: _Optional[int] = ..., to_global_id: _Optional[int] = ..., since_ns: _Optional[int] = ..., reason: _Optional[_Union[IdentityChangeReason, str]] = ...) -> None: ...

class AssociateResponse(_message.Message):
    __slots__ = ("step", "assignments", "settled_through_ns", "settled", "changes")
    STEP_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    SETTLED_THROUGH_NS_FIELD_NUMBER: _ClassVar[int]
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    step: int
    assignments: _containers.RepeatedCompositeFieldContainer[Assignment]
    settled_through_ns: int
    settled: _containers.RepeatedCompositeFieldContainer[SettledAssignment]
    changes: _containers.RepeatedCompositeFieldContainer[IdentityChange]
    def __init__(self, step: _Optional[int] = ..., assignments: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ..., settled_through_ns: _Optional[int] = ..., settled: _Optional[_Iterable[_Union[SettledAssignment, _Mapping]]] = ..., changes: _Optional[_Iterable[_Union[IdentityChange, _Mapping]]] = ...) -> None: ...

class MergeIdentitiesRequest(_message.Message):
    __slots__ = ("session_id", "into_global_id", "from_global_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    INTO_GLOBAL_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_GLOBAL_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    into_global_id: int
    from_global_id: int
    def __init__(self, session_id: _Optional[str] = ..., into_global_id: _Optional[int] = ..., from_global_id: _Optional[int] = ...) -> None: ...

class MergeIdentitiesResponse(_message.Message):
    __slots__ = ("global_id", "changed", "since_ns")
    GLOBAL_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    global_id: int
    changed: _containers.RepeatedCompositeFieldContainer[Assignment]
    since_ns: int
    def __init__(self, global_id: _Optional[int] = ..., changed: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ..., since_ns: _Optional[int] = ...) -> None: ...

class SplitTrackRequest(_message.Message):
    __slots__ = ("session_id", "camera_id", "track_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    camera_id: str
    track_id: int
    def __init__(self, session_id: _Optional[str] = ..., camera_id: _Optional[str] = ..., track_id: _Optional[int] = ...) -> None: ...

class SplitTrackResponse(_message.Message):
    __slots__ = ("new_global_id", "from_global_id", "since_ns")
    NEW_GLOBAL_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_GLOBAL_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    new_global_id: int
    from_global_id: int
    since_ns: int
    def __init__(self, new_global_id: _Optional[int] = ..., from_global_id: _Optional[int] = ..., since_ns: _Optional[int] = ...) -> None: ...

class UndoCorrectionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class UndoCorrectionResponse(_message.Message):
    __slots__ = ("undone_kind", "undone", "changes", "since_ns")
    UNDONE_KIND_FIELD_NUMBER: _ClassVar[int]
    UNDONE_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    undone_kind: str
    undone: _struct_pb2.Struct
    changes: _containers.RepeatedCompositeFieldContainer[IdentityChange]
    since_ns: int
    def __init__(self, undone_kind: _Optional[str] = ..., undone: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., changes: _Optional[_Iterable[_Union[IdentityChange, _Mapping]]] = ..., since_ns: _Optional[int] = ...) -> None: ...

class ResetGalleryRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class ResetGalleryResponse(_message.Message):
    __slots__ = ("persons_removed",)
    PERSONS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    persons_removed: int
    def __init__(self, persons_removed: _Optional[int] = ...) -> None: ...

class GetGalleryStatsRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetGalleryStatsResponse(_message.Message):
    __slots__ = ("persons", "active_persons", "embeddings", "local_tracks", "corrections")
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_PERSONS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_TRACKS_FIELD_NUMBER: _ClassVar[int]
    CORRECTIONS_FIELD_NUMBER: _ClassVar[int]
    persons: int
    active_persons: int
    embeddings: int
    local_tracks: int
    corrections: int
    def __init__(self, persons: _Optional[int] = ..., active_persons: _Optional[int] = ..., embeddings: _Optional[int] = ..., local_tracks: _Optional[int] = ..., corrections: _Optional[int] = ...) -> None: ...

class GetPersonThumbnailRequest(_message.Message):
    __slots__ = ("session_id", "global_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    global_id: int
    def __init__(self, session_id: _Optional[str] = ..., global_id: _Optional[int] = ...) -> None: ...

class GetPersonThumbnailResponse(_message.Message):
    __slots__ = ("jpeg", "timestamp_ns", "camera_id")
    JPEG_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    jpeg: bytes
    timestamp_ns: int
    camera_id: str
    def __init__(self, jpeg: _Optional[bytes] = ..., timestamp_ns: _Optional[int] = ..., camera_id: _Optional[str] = ...) -> None: ...

class PersonRef(_message.Message):
    __slots__ = ("session_id", "global_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    global_id: int
    def __init__(self, session_id: _Optional[str] = ..., global_id: _Optional[int] = ...) -> None: ...

class SearchPersonsRequest(_message.Message):
    __slots__ = ("video_set", "person", "crop_jpeg", "k")
    VIDEO_SET_FIELD_NUMBER: _ClassVar[int]
    PERSON_FIELD_NUMBER: _ClassVar[int]
    CROP_JPEG_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    video_set: str
    person: PersonRef
    crop_jpeg: bytes
    k: int
    def __init__(self, video_set: _Optional[str] = ..., person: _Optional[_Union[PersonRef, _Mapping]] = ..., crop_jpeg: _Optional[bytes] = ..., k: _Optional[int] = ...) -> None: ...

class PersonHit(_message.Message):
    __slots__ = ("session_id", "global_id", "camera_ids", "first_seen_ns", "last_seen_ns", "score")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_IDS_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_NS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_NS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    global_id: int
    camera_ids: _containers.RepeatedScalarFieldContainer[str]
    first_seen_ns: int
    last_seen_ns: int
    score: float
    def __init__(self, session_id: _Optional[str] = ..., global_id: _Optional[int] = ..., camera_ids: _Optional[_Iterable[str]] = ..., first_seen_ns: _Optional[int] = ..., last_seen_ns: _Optional[int] = ..., score: _Optional[float] = ...) -> None: ...

class SearchPersonsResponse(_message.Message):
    __slots__ = ("hits", "indexed_persons", "index_kind")
    HITS_FIELD_NUMBER: _ClassVar[int]
    INDEXED_PERSONS_FIELD_NUMBER: _ClassVar[int]
    INDEX_KIND_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[PersonHit]
    indexed_persons: int
    index_kind: str
    def __init__(self, hits: _Optional[_Iterable[_Union[PersonHit, _Mapping]]] = ..., indexed_persons: _Optional[int] = ..., index_kind: _Optional[str] = ...) -> None: ...

class PurgeHistoryRequest(_message.Message):
    __slots__ = ("session_id", "older_than_s")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OLDER_THAN_S_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    older_than_s: float
    def __init__(self, session_id: _Optional[str] = ..., older_than_s: _Optional[float] = ...) -> None: ...

class PurgeHistoryResponse(_message.Message):
    __slots__ = ("galleries_deleted", "corrections_deleted")
    GALLERIES_DELETED_FIELD_NUMBER: _ClassVar[int]
    CORRECTIONS_DELETED_FIELD_NUMBER: _ClassVar[int]
    galleries_deleted: int
    corrections_deleted: int
    def __init__(self, galleries_deleted: _Optional[int] = ..., corrections_deleted: _Optional[int] = ...) -> None: ...
