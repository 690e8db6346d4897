from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OccupancyGroup(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OCCUPANCY_GROUP_UNSPECIFIED: _ClassVar[OccupancyGroup]
    OCCUPANCY_GROUP_CAMERA: _ClassVar[OccupancyGroup]
    OCCUPANCY_GROUP_ZONE: _ClassVar[OccupancyGroup]

class ZoneEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ZONE_EVENT_KIND_UNSPECIFIED: _ClassVar[ZoneEventKind]
    ZONE_EVENT_KIND_ENTER: _ClassVar[ZoneEventKind]
    ZONE_EVENT_KIND_EXIT: _ClassVar[ZoneEventKind]

class ExportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_FORMAT_UNSPECIFIED: _ClassVar[ExportFormat]
    EXPORT_FORMAT_CSV: _ClassVar[ExportFormat]
    EXPORT_FORMAT_PARQUET: _ClassVar[ExportFormat]
OCCUPANCY_GROUP_UNSPECIFIED: OccupancyGroup
OCCUPANCY_GROUP_CAMERA: OccupancyGroup
OCCUPANCY_GROUP_ZONE: OccupancyGroup
ZONE_EVENT_KIND_UNSPECIFIED: ZoneEventKind
ZONE_EVENT_KIND_ENTER: ZoneEventKind
ZONE_EVENT_KIND_EXIT: ZoneEventKind
EXPORT_FORMAT_UNSPECIFIED: ExportFormat
EXPORT_FORMAT_CSV: ExportFormat
EXPORT_FORMAT_PARQUET: ExportFormat

class TimeRange(_message.Message):
    __slots__ = ("session_id", "start_ns", "end_ns")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    START_NS_FIELD_NUMBER: _ClassVar[int]
    END_NS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    start_ns: int
    end_ns: int
    def __init__(self, session_id: _Optional[str] = ..., start_ns: _Optional[int] = ..., end_ns: _Optional[int] = ...) -> None: ...

class OccupancyRequest(_message.Message):
    __slots__ = ("range", "bucket_s", "group_by")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    BUCKET_S_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    bucket_s: float
    group_by: OccupancyGroup
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., bucket_s: _Optional[float] = ..., group_by: _Optional[_Union[OccupancyGroup, str]] = ...) -> None: ...

class OccupancyBucket(_message.Message):
    __slots__ = ("start_ns", "group", "people", "mean_people")
    START_NS_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    PEOPLE_FIELD_NUMBER: _ClassVar[int]
    MEAN_PEOPLE_FIELD_NUMBER: _ClassVar[int]
    start_ns: int
    group: str
    people: int
    mean_people: float
    def __init__(self, start_ns: _Optional[int] = ..., group: _Optional[str] = ..., people: _Optional[int] = ..., mean_people: _Optional[float] = ...) -> None: ...

class OccupancyResponse(_message.Message):
    __slots__ = ("buckets",)
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    buckets: _containers.RepeatedCompositeFieldContainer[OccupancyBucket]
    def __init__(self, buckets: _Optional[_Iterable[_Union[OccupancyBucket, _Mapping]]] = ...) -> None: ...

class PeopleCountRequest(_message.Message):
    __slots__ = ("range",)
    RANGE_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ...) -> None: ...

class PeopleCountResponse(_message.Message):
    __slots__ = ("count", "global_ids")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_IDS_FIELD_NUMBER: _ClassVar[int]
    count: int
    global_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, count: _Optional[int] = ..., global_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class DwellRequest(_message.Message):
    __slots__ = ("range", "zone_id")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    ZONE_ID_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    zone_id: str
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., zone_id: _Optional[str] = ...) -> None: ...

class PersonDwell(_message.Message):
    __slots__ = ("global_id", "zone_id", "dwell_s")
    GLOBAL_ID_FIELD_NUMBER: _ClassVar[int]
    ZONE_ID_FIELD_NUMBER: _ClassVar[int]
    DWELL_S_FIELD_NUMBER: _ClassVar[int]
    global_id: int
    zone_id: str
    dwell_s: float
    def __init__(self, global_id: _Optional[int] = ..., zone_id: _Optional[str] = ..., dwell_s: _Optional[float] = ...) -> None: ...

class DwellResponse(_message.Message):
    __slots__ = ("dwells", "mean_s", "p50_s", "p90_s")
    DWELLS_FIELD_NUMBER: _ClassVar[int]
    MEAN_S_FIELD_NUMBER: _ClassVar[int]
    P50_S_FIELD_NUMBER: _ClassVar[int]
    P90_S_FIELD_NUMBER: _ClassVar[int]
    dwells: _containers.RepeatedCompositeFieldContainer[PersonDwell]
    mean_s: float
    p50_s: float
    p90_s: float
    def __init__(self, dwells: _Optional[_Iterable[_Union[PersonDwell, _Mapping]]] = ..., mean_s: _Optional[float] = ..., p50_s: _Optional[float] = ..., p90_s: _Optional[float] = ...) -> None: ...

class HeatmapRequest(_message.Message):
    __slots__ = ("range", "cell_m")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    CELL_M_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    cell_m: float
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., cell_m: _Optional[float] = ...) -> None: ...

class HeatmapResponse(_message.Message):
    __slots__ = ("rows", "cols", "cell_m", "origin_x_m", "origin_y_m", "seconds")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    CELL_M_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_X_M_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_Y_M_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    rows: int
    cols: int
    cell_m: float
    origin_x_m: float
    origin_y_m: float
    seconds: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, rows: _Optional[int] = ..., cols: _Optional[int] = ..., cell_m: _Optional[float] = ..., origin_x_m: _Optional[float] = ..., origin_y_m: _Optional[float] = ..., seconds: _Optional[_Iterable[float]] = ...) -> None: ...

class ZoneEventsRequest(_message.Message):
    __slots__ = ("range", "zone_id")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    ZONE_ID_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    zone_id: str
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., zone_id: _Optional[str] = ...) -> None: ...

class ZoneEvent(_message.Message):
    __slots__ = ("timestamp_ns", "zone_id", "global_id", "kind")
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    ZONE_ID_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    timestamp_ns: int
    zone_id: str
    global_id: int
    kind: ZoneEventKind
    def __init__(self, timestamp_ns: _Optional[int] = ..., zone_id: _Optional[str] = ..., global_id: _Optional[int] = ..., kind: _Optional[_Union[ZoneEventKind, str]] = ...) -> None: ...

class ZoneEventsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[ZoneEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[ZoneEvent, _Mapping]]] = ...) -> None: ...

class LineCrossingsRequest(_message.Message):
    __slots__ = ("range", "line_id")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    line_id: str
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., line_id: _Optional[str] = ...) -> None: ...

class LineCount(_message.Message):
    __slots__ = ("line_id", "forward", "backward")
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    FORWARD_FIELD_NUMBER: _ClassVar[int]
    BACKWARD_FIELD_NUMBER: _ClassVar[int]
    line_id: str
    forward: int
    backward: int
    def __init__(self, line_id: _Optional[str] = ..., forward: _Optional[int] = ..., backward: _Optional[int] = ...) -> None: ...

class LineCrossingsResponse(_message.Message):
    __slots__ = ("lines",)
    LINES_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[LineCount]
    def __init__(self, lines: _Optional[_Iterable[_Union[LineCount, _Mapping]]] = ...) -> None: ...

class TrajectoryRequest(_message.Message):
    __slots__ = ("range", "global_id", "simplify_m")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_ID_FIELD_NUMBER: _ClassVar[int]
    SIMPLIFY_M_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    global_id: int
    simplify_m: float
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., global_id: _Optional[int] = ..., simplify_m: _Optional[float] = ...) -> None: ...

class TrajectoryPoint(_message.Message):
    __slots__ = ("timestamp_ns", "x_m", "y_m", "speed_mps")
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    X_M_FIELD_NUMBER: _ClassVar[int]
    Y_M_FIELD_NUMBER: _ClassVar[int]
    SPEED_MPS_FIELD_NUMBER: _ClassVar[int]
    timestamp_ns: int
    x_m: float
    y_m: float
    speed_mps: float
    def __init__(self, timestamp_ns: _Optional[int] = ..., x_m: _Optional[float] = ..., y_m: _Optional[float] = ..., speed_mps: _Optional[float] = ...) -> None: ...

class PersonTrajectory(_message.Message):
    __slots__ = ("global_id", "points", "length_m", "mean_speed_mps")
    GLOBAL_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    LENGTH_M_FIELD_NUMBER: _ClassVar[int]
    MEAN_SPEED_MPS_FIELD_NUMBER: _ClassVar[int]
    global_id: int
    points: _containers.RepeatedCompositeFieldContainer[TrajectoryPoint]
    length_m: float
    mean_speed_mps: float
    def __init__(self, global_id: _Optional[int] = ..., points: _Optional[_Iterable[_Union[TrajectoryPoint, _Mapping]]] = ..., length_m: _Optional[float] = ..., mean_speed_mps: _Optional[float] = ...) -> None: ...

class TrajectoryResponse(_message.Message):
    __slots__ = ("trajectories",)
    TRAJECTORIES_FIELD_NUMBER: _ClassVar[int]
    trajectories: _containers.RepeatedCompositeFieldContainer[PersonTrajectory]
    def __init__(self, trajectories: _Optional[_Iterable[_Union[PersonTrajectory, _Mapping]]] = ...) -> None: ...

class SummaryRequest(_message.Message):
    __slots__ = ("range",)
    RANGE_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ...) -> None: ...

class SummaryResponse(_message.Message):
    __slots__ = ("people", "track_points", "first_ns", "last_ns", "peak_occupancy", "mean_dwell_s", "cameras")
    PEOPLE_FIELD_NUMBER: _ClassVar[int]
    TRACK_POINTS_FIELD_NUMBER: _ClassVar[int]
    FIRST_NS_FIELD_NUMBER: _ClassVar[int]
    LAST_NS_FIELD_NUMBER: _ClassVar[int]
    PEAK_OCCUPANCY_FIELD_NUMBER: _ClassVar[int]
    MEAN_DWELL_S_FIELD_NUMBER: _ClassVar[int]
    CAMERAS_FIELD_NUMBER: _ClassVar[int]
    people: int
    track_points: int
    first_ns: int
    last_ns: int
    peak_occupancy: float
    mean_dwell_s: float
    cameras: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, people: _Optional[int] = ..., track_points: _Optional[int] = ..., first_ns: _Optional[int] = ..., last_ns: _Optional[int] = ..., peak_occupancy: _Optional[float] = ..., mean_dwell_s: _Optional[float] = ..., cameras: _Optional[_Iterable[str]] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("range", "format")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    format: ExportFormat
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., format: _Optional[_Union[ExportFormat, str]] = ...) -> None: ...

class ExportResponse(_message.Message):
    __slots__ = ("chunk",)
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    def __init__(self, chunk: _Optional[bytes] = ...) -> None: ...
