from google.protobuf import struct_pb2 as _struct_pb2
from spoton.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrackState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRACK_STATE_UNSPECIFIED: _ClassVar[TrackState]
    TRACK_STATE_TENTATIVE: _ClassVar[TrackState]
    TRACK_STATE_CONFIRMED: _ClassVar[TrackState]
    TRACK_STATE_LOST: _ClassVar[TrackState]
TRACK_STATE_UNSPECIFIED: TrackState
TRACK_STATE_TENTATIVE: TrackState
TRACK_STATE_CONFIRMED: TrackState
TRACK_STATE_LOST: TrackState

class TrackStart(_message.Message):
    __slots__ = ("session_id", "camera_id", "tracker_type", "options", "fps")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    TRACKER_TYPE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    camera_id: str
    tracker_type: str
    options: _struct_pb2.Struct
    fps: float
    def __init__(self, session_id: _Optional[str] = ..., camera_id: _Optional[str] = ..., tracker_type: _Optional[str] = ..., options: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., fps: _Optional[float] = ...) -> None: ...

class TrackFrame(_message.Message):
    __slots__ = ("frame_index", "timestamp_ns", "width", "height", "detections", "embeddings", "predict_only", "births_confirmed_next")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    PREDICT_ONLY_FIELD_NUMBER: _ClassVar[int]
    BIRTHS_CONFIRMED_NEXT_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    timestamp_ns: int
    width: int
    height: int
    detections: _containers.RepeatedCompositeFieldContainer[_common_pb2.Detection]
    embeddings: _common_pb2.Tensor
    predict_only: bool
    births_confirmed_next: bool
    def __init__(self, frame_index: _Optional[int] = ..., timestamp_ns: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., detections: _Optional[_Iterable[_Union[_common_pb2.Detection, _Mapping]]] = ..., embeddings: _Optional[_Union[_common_pb2.Tensor, _Mapping]] = ..., predict_only: _Optional[bool] = ..., births_confirmed_next: _Optional[bool] = ...) -> None: ...

class TrackRequest(_message.Message):
    __slots__ = ("start", "frame")
    START_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    start: TrackStart
    frame: TrackFrame
    def __init__(self, start: _Optional[_Union[TrackStart, _Mapping]] = ..., frame: _Optional[_Union[TrackFrame, _Mapping]] = ...) -> None: ...

class Track(_message.Message):
    __slots__ = ("track_id", "bbox", "confidence", "class_id", "state", "age", "hits", "det_index")
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    BBOX_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    AGE_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    DET_INDEX_FIELD_NUMBER: _ClassVar[int]
    track_id: int
    bbox: _common_pb2.BBox
    confidence: float
    class_id: int
    state: TrackState
    age: int
    hits: int
    det_index: int
    def __init__(self, track_id: _Optional[int] = ..., bbox: _Optional[_Union[_common_pb2.BBox, _Mapping]] = ..., confidence: _Optional[float] = ..., class_id: _Optional[int] = ..., state: _Optional[_Union[TrackState, str]] = ..., age: _Optional[int] = ..., hits: _Optional[int] = ..., det_index: _Optional[int] = ...) -> None: ...

class TrackResponse(_message.Message):
    __slots__ = ("camera_id", "frame_index", "timestamp_ns", "tracks", "resumed")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    TRACKS_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    frame_index: int
    timestamp_ns: int
    tracks: _containers.RepeatedCompositeFieldContainer[Track]
    resumed: bool
    def __init__(self, camera_id: _Optional[str] = ..., frame_index: _Optional[int] = ..., timestamp_ns: _Optional[int] = ..., tracks: _Optional[_Iterable[_Union[Track, _Mapping]]] = ..., resumed: _Optional[bool] = ...) -> None: ...

class ListTrackersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TrackerInfo(_message.Message):
    __slots__ = ("name", "uses_embeddings", "default_options")
    NAME_FIELD_NUMBER: _ClassVar[int]
    USES_EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    uses_embeddings: bool
    default_options: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., uses_embeddings: _Optional[bool] = ..., default_options: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ListTrackersResponse(_message.Message):
    __slots__ = ("trackers", "default_tracker")
    TRACKERS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TRACKER_FIELD_NUMBER: _ClassVar[int]
    trackers: _containers.RepeatedCompositeFieldContainer[TrackerInfo]
    default_tracker: str
    def __init__(self, trackers: _Optional[_Iterable[_Union[TrackerInfo, _Mapping]]] = ..., default_tracker: _Optional[str] = ...) -> None: ...
