from spoton.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PointPair(_message.Message):
    __slots__ = ("image", "floor")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    FLOOR_FIELD_NUMBER: _ClassVar[int]
    image: _common_pb2.Point2
    floor: _common_pb2.FloorPoint
    def __init__(self, image: _Optional[_Union[_common_pb2.Point2, _Mapping]] = ..., floor: _Optional[_Union[_common_pb2.FloorPoint, _Mapping]] = ...) -> None: ...

class LensDistortion(_message.Message):
    __slots__ = ("camera_matrix", "coefficients")
    CAMERA_MATRIX_FIELD_NUMBER: _ClassVar[int]
    COEFFICIENTS_FIELD_NUMBER: _ClassVar[int]
    camera_matrix: _containers.RepeatedScalarFieldContainer[float]
    coefficients: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, camera_matrix: _Optional[_Iterable[float]] = ..., coefficients: _Optional[_Iterable[float]] = ...) -> None: ...

class Calibration(_message.Message):
    __slots__ = ("video_set", "camera_id", "points", "homography", "distortion", "foot_offset_px", "version", "reprojection_error_m", "source", "created_ns", "restored_from")
    VIDEO_SET_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    HOMOGRAPHY_FIELD_NUMBER: _ClassVar[int]
    DISTORTION_FIELD_NUMBER: _ClassVar[int]
    FOOT_OFFSET_PX_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REPROJECTION_ERROR_M_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CREATED_NS_FIELD_NUMBER: _ClassVar[int]
    RESTORED_FROM_FIELD_NUMBER: _ClassVar[int]
    video_set: str
    camera_id: str
    points: _containers.RepeatedCompositeFieldContainer[PointPair]
    homography: _containers.RepeatedScalarFieldContainer[float]
    distortion: LensDistortion
    foot_offset_px: _common_pb2.Point2
    version: int
    reprojection_error_m: float
    source: str
    created_ns: int
    restored_from: int
    def __init__(self, video_set: _Optional[str] = ..., camera_id: _Optional[str] = ..., points: _Optional[_Iterable[_Union[PointPair, _Mapping]]] = ..., homography: _Optional[_Iterable[float]] = ..., distortion: _Optional[_Union[LensDistortion, _Mapping]] = ..., foot_offset_px: _Optional[_Union[_common_pb2.Point2, _Mapping]] = ..., version: _Optional[int] = ..., reprojection_error_m: _Optional[float] = ..., source: _Optional[str] = ..., created_ns: _Optional[int] = ..., restored_from: _Optional[int] = ...) -> None: ...

class SetCalibrationRequest(_message.Message):
    __slots__ = ("calibration",)
    CALIBRATION_FIELD_NUMBER: _ClassVar[int]
    calibration: Calibration
    def __init__(self, calibration: _Optional[_Union[Calibration, _Mapping]] = ...) -> None: ...

class SetCalibrationResponse(_message.Message):
    __slots__ = ("calibration", "reprojection_error_m")
    CALIBRATION_FIELD_NUMBER: _ClassVar[int]
    REPROJECTION_ERROR_M_FIELD_NUMBER: _ClassVar[int]
    calibration: Calibration
    reprojection_error_m: float
    def __init__(self, calibration: _Optional[_Union[Calibration, _Mapping]] = ..., reprojection_error_m: _Optional[float] = ...) -> None: ...

class GetCalibrationRequest(_message.Message):
    __slots__ = ("video_set", "camera_id", "version")
    VIDEO_SET_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    video_set: str
    camera_id: str
    version: int
    def __init__(self, video_set: _Optional[str] = ..., camera_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetCalibrationResponse(_message.Message):
    __slots__ = ("calibration",)
    CALIBRATION_FIELD_NUMBER: _ClassVar[int]
    calibration: Calibration
    def __init__(self, calibration: _Optional[_Union[Calibration, _Mapping]] = ...) -> None: ...

class ListCalibrationsRequest(_message.Message):
    __slots__ = ("video_set",)
    VIDEO_SET_FIELD_NUMBER: _ClassVar[int]
    video_set: str
    def __init__(self, video_set: _Optional[str] = ...) -> None: ...

class ListCalibrationsResponse(_message.Message):
    __slots__ = ("calibrations",)
    CALIBRATIONS_FIELD_NUMBER: _ClassVar[int]
    calibrations: _containers.RepeatedCompositeFieldContainer[Calibration]
    def __init__(self, calibrations: _Optional[_Iterable[_Union[Calibration, _Mapping]]] = ...) -> None: ...

class ListCalibrationVersionsRequest(_message.Message):
    __slots__ = ("video_set", "camera_id")
    VIDEO_SET_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    video_set: str
    camera_id: str
    def __init__(self, video_set: _Optional[str] = ..., camera_id: _Optional[str] = ...) -> None: ...

class ListCalibrationVersionsResponse(_message.Message):
    __slots__ = ("calibrations",)
    CALIBRATIONS_FIELD_NUMBER: _ClassVar[int]
    calibrations: _containers.RepeatedCompositeFieldContainer[Calibration]
    def __init__(self, calibrations: _Optional[_Iterable[_Union[Calibration, _Mapping]]] = ...) -> None: ...

class RollbackCalibrationRequest(_message.Message):
    __slots__ = ("video_set", "camera_id", "version")
    VIDEO_SET_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    video_set: str
    camera_id: str
    version: int
    def __init__(self, video_set: _Optional[str] = ..., camera_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class RollbackCalibrationResponse(_message.Message):
    __slots__ = ("calibration",)
    CALIBRATION_FIELD_NUMBER: _ClassVar[int]
    calibration: Calibration
    def __init__(self, calibration: _Optional[_Union[Calibration, _Mapping]] = ...) -> None: ...

class FitCalibrationRequest(_message.Message):
    __slots__ = ("points", "distortion")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    DISTORTION_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[PointPair]
    distortion: LensDistortion
    def __init__(self, points: _Optional[_Iterable[_Union[PointPair, _Mapping]]] = ..., distortion: _Optional[_Union[LensDistortion, _Mapping]] = ...) -> None: ...

class FitCalibrationResponse(_message.Message):
    __slots__ = ("homography", "reprojection_error_m", "inliers", "point_errors_m")
    HOMOGRAPHY_FIELD_NUMBER: _ClassVar[int]
    REPROJECTION_ERROR_M_FIELD_NUMBER: _ClassVar[int]
    INLIERS_FIELD_NUMBER: _ClassVar[int]
    POINT_ERRORS_M_FIELD_NUMBER: _ClassVar[int]
    homography: _containers.RepeatedScalarFieldContainer[float]
    reprojection_error_m: float
    inliers: _containers.RepeatedScalarFieldContainer[bool]
    point_errors_m: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, homography: _Optional[_Iterable[float]] = ..., reprojection_error_m: _Optional[float] = ..., inliers: _Optional[_Iterable[bool]] = ..., point_errors_m: _Optional[_Iterable[float]] = ...) -> None: ...

class ProjectedPoint(_message.Message):
    __slots__ = ("floor", "valid")
    FLOOR_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    floor: _common_pb2.FloorPoint
    valid: bool
    def __init__(self, floor: _Optional[_Union[_common_pb2.FloorPoint, _Mapping]] = ..., valid: _Optional[bool] = ...) -> None: ...

class ProjectRequest(_message.Message):
    __slots__ = ("video_set", "camera_id", "points")
    VIDEO_SET_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    video_set: str
    camera_id: str
    points: _containers.RepeatedCompositeFieldContainer[_common_pb2.Point2]
    def __init__(self, video_set: _Optional[str] = ..., camera_id: _Optional[str] = ..., points: _Optional[_Iterable[_Union[_common_pb2.Point2, _Mapping]]] = ...) -> None: ...

class ProjectResponse(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[ProjectedPoint]
    def __init__(self, points: _Optional[_Iterable[_Union[ProjectedPoint, _Mapping]]] = ...) -> None: ...

class ProjectBoxesRequest(_message.Message):
    __slots__ = ("video_set", "camera_id", "boxes")
    VIDEO_SET_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    BOXES_FIELD_NUMBER: _ClassVar[int]
    video_set: str
    camera_id: str
    boxes: _containers.RepeatedCompositeFieldContainer[_common_pb2.BBox]
    def __init__(self, video_set: _Optional[str] = ..., camera_id: _Optional[str] = ..., boxes: _Optional[_Iterable[_Union[_common_pb2.BBox, _Mapping]]] = ...) -> None: ...

class ProjectBoxesResponse(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[ProjectedPoint]
    def __init__(self, points: _Optional[_Iterable[_Union[ProjectedPoint, _Mapping]]] = ...) -> None: ...

class CameraBoxes(_message.Message):
    __slots__ = ("camera_id", "boxes")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    BOXES_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    boxes: _containers.RepeatedCompositeFieldContainer[_common_pb2.BBox]
    def __init__(self, camera_id: _Optional[str] = ..., boxes: _Optional[_Iterable[_Union[_common_pb2.BBox, _Mapping]]] = ...) -> None: ...

class CameraFloorPoints(_message.Message):
    __slots__ = ("camera_id", "points")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    points: _containers.RepeatedCompositeFieldContainer[ProjectedPoint]
    def __init__(self, camera_id: _Optional[str] = ..., points: _Optional[_Iterable[_Union[ProjectedPoint, _Mapping]]] = ...) -> None: ...

class ProjectStreamRequest(_message.Message):
    __slots__ = ("step", "video_set", "cameras")
    STEP_FIELD_NUMBER: _ClassVar[int]
    VIDEO_SET_FIELD_NUMBER: _ClassVar[int]
    CAMERAS_FIELD_NUMBER: _ClassVar[int]
    step: int
    video_set: str
    cameras: _containers.RepeatedCompositeFieldContainer[CameraBoxes]
    def __init__(self, step: _Optional[int] = ..., video_set: _Optional[str] = ..., cameras: _Optional[_Iterable[_Union[CameraBoxes, _Mapping]]] = ...) -> None: ...

class ProjectStreamResponse(_message.Message):
    __slots__ = ("step", "cameras")
    STEP_FIELD_NUMBER: _ClassVar[int]
    CAMERAS_FIELD_NUMBER: _ClassVar[int]
    step: int
    cameras: _containers.RepeatedCompositeFieldContainer[CameraFloorPoints]
    def __init__(self, step: _Optional[int] = ..., cameras: _Optional[_Iterable[_Union[CameraFloorPoints, _Mapping]]] = ...) -> None: ...
