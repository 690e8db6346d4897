from spoton.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DetectOptions(_message.Message):
    __slots__ = ("confidence_threshold", "iou_threshold", "max_detections")
    CONFIDENCE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    IOU_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    confidence_threshold: float
    iou_threshold: float
    max_detections: int
    def __init__(self, confidence_threshold: _Optional[float] = ..., iou_threshold: _Optional[float] = ..., max_detections: _Optional[int] = ...) -> None: ...

class FrameDetections(_message.Message):
    __slots__ = ("camera_id", "frame_index", "timestamp_ns", "detections", "width", "height")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    frame_index: int
    timestamp_ns: int
    detections: _containers.RepeatedCompositeFieldContainer[_common_pb2.Detection]
    width: int
    height: int
    def __init__(self, camera_id: _Optional[str] = ..., frame_index: _Optional[int] = ..., timestamp_ns: _Optional[int] = ..., detections: _Optional[_Iterable[_Union[_common_pb2.Detection, _Mapping]]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class FrameBatch(_message.Message):
    __slots__ = ("step", "frames", "options")
    STEP_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    step: int
    frames: _containers.RepeatedCompositeFieldContainer[_common_pb2.Frame]
    options: DetectOptions
    def __init__(self, step: _Optional[int] = ..., frames: _Optional[_Iterable[_Union[_common_pb2.Frame, _Mapping]]] = ..., options: _Optional[_Union[DetectOptions, _Mapping]] = ...) -> None: ...

class DetectionBatch(_message.Message):
    __slots__ = ("step", "frames", "inference_ms")
    STEP_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    step: int
    frames: _containers.RepeatedCompositeFieldContainer[FrameDetections]
    inference_ms: float
    def __init__(self, step: _Optional[int] = ..., frames: _Optional[_Iterable[_Union[FrameDetections, _Mapping]]] = ..., inference_ms: _Optional[float] = ...) -> None: ...

class DetectRequest(_message.Message):
    __slots__ = ("frame", "options")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    frame: _common_pb2.Frame
    options: DetectOptions
    def __init__(self, frame: _Optional[_Union[_common_pb2.Frame, _Mapping]] = ..., options: _Optional[_Union[DetectOptions, _Mapping]] = ...) -> None: ...

class DetectResponse(_message.Message):
    __slots__ = ("result", "inference_ms")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    result: FrameDetections
    inference_ms: float
    def __init__(self, result: _Optional[_Union[FrameDetections, _Mapping]] = ..., inference_ms: _Optional[float] = ...) -> None: ...

class DetectStreamRequest(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: FrameBatch
    def __init__(self, batch: _Optional[_Union[FrameBatch, _Mapping]] = ...) -> None: ...

class DetectStreamResponse(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: DetectionBatch
    def __init__(self, batch: _Optional[_Union[DetectionBatch, _Mapping]] = ...) -> None: ...

class DetectionServiceGetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DetectionServiceGetModelInfoResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: _common_pb2.ModelInfo
    def __init__(self, info: _Optional[_Union[_common_pb2.ModelInfo, _Mapping]] = ...) -> None: ...
