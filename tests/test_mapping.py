"""Floor mapping: geometry core and the MappingService over gRPC."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from mapping_svc.geometry import CameraGeometry, fit_homography, floor_sign
from spoton.demo.data import PETS_VIEW1_HOMOGRAPHY
from spoton.v1 import common_pb2, mapping_pb2, mapping_pb2_grpc

IMAGE = [(100, 500), (700, 480), (600, 250), (200, 260), (400, 350)]


def floor_of(points):  # type: ignore[no-untyped-def]
    import cv2

    return cv2.perspectiveTransform(np.array(points, np.float64).reshape(-1, 1, 2), PETS_VIEW1_HOMOGRAPHY).reshape(
        -1, 2
    )


def test_fit_recovers_known_homography() -> None:
    h, err, inliers = fit_homography(np.array(IMAGE, float), floor_of(IMAGE))
    assert err < 1e-6 and inliers.all()
    geo = CameraGeometry(h, floor_sign(h, np.array(IMAGE, float)))
    np.testing.assert_allclose(geo.project(np.array([[384, 400]])).xy_m, floor_of([(384, 400)]), atol=1e-6)


def test_points_above_horizon_are_invalid() -> None:
    h = PETS_VIEW1_HOMOGRAPHY
    geo = CameraGeometry(h, floor_sign(h, np.array(IMAGE, float)))
    # The horizon of this view lies above the image (w = 0 where 9.1e-4 x + 1.9e-2 y + 1 = 0, y ~ -60 px).
    pts = geo.project(np.array([[384, 400], [384, -200]]))
    assert pts.valid.tolist() == [True, False]
    assert pts.xy_m[1].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (IMAGE[:3], "at least 4"),
        ([(0, 0), (10, 10), (20, 20), (30, 30)], "collinear"),
        ([(0, 0), (0, 0), (20, 5), (30, 40)], "duplicate"),
        ([(0, np.nan), (1, 0), (20, 5), (30, 40)], "finite"),
    ],
)
def test_fit_rejects_bad_points(image, message) -> None:  # type: ignore[no-untyped-def]
    floor = np.arange(len(image) * 2, dtype=float).reshape(-1, 2) * np.array([1.0, 1.7]) + [0, 0.3]
    with pytest.raises(ValueError, match=message):
        fit_homography(np.array(image, float), floor)


def _pairs(image, floor):  # type: ignore[no-untyped-def]
    return [
        mapping_pb2.PointPair(image=common_pb2.Point2(x=i[0], y=i[1]), floor=common_pb2.FloorPoint(x_m=f[0], y_m=f[1]))
        for i, f in zip(image, floor, strict=True)
    ]


def test_set_calibration_and_project_over_grpc(channel_to) -> None:  # type: ignore[no-untyped-def]
    stub = mapping_pb2_grpc.MappingServiceStub(channel_to("mapping"))
    cal = mapping_pb2.Calibration(video_set="t-map", camera_id="c1", points=_pairs(IMAGE, floor_of(IMAGE)))
    reply = stub.SetCalibration(mapping_pb2.SetCalibrationRequest(calibration=cal), timeout=5)
    assert reply.reprojection_error_m < 1e-4 and reply.calibration.version >= 1
    boxes = [common_pb2.BBox(x1=370, y1=300, x2=398, y2=400)]
    out = stub.ProjectBoxes(mapping_pb2.ProjectBoxesRequest(video_set="t-map", camera_id="c1", boxes=boxes), timeout=5)
    expected = floor_of([(384, 400)])[0]
    assert out.points[0].valid
    assert abs(out.points[0].floor.x_m - expected[0]) < 1e-3 and abs(out.points[0].floor.y_m - expected[1]) < 1e-3


def test_mapping_errors_over_grpc(channel_to) -> None:  # type: ignore[no-untyped-def]
    stub = mapping_pb2_grpc.MappingServiceStub(channel_to("mapping"))
    with pytest.raises(grpc.RpcError) as err:
        stub.Project(
            mapping_pb2.ProjectRequest(video_set="t-map", camera_id="nope", points=[common_pb2.Point2()]), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    bad = mapping_pb2.Calibration(video_set="t-map", camera_id="c2", points=_pairs(IMAGE[:3], floor_of(IMAGE[:3])))
    with pytest.raises(grpc.RpcError) as err:
        stub.SetCalibration(mapping_pb2.SetCalibrationRequest(calibration=bad), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "4" in err.value.details()
    singular = mapping_pb2.Calibration(video_set="t-map", camera_id="c2", homography=[0.0] * 9)
    with pytest.raises(grpc.RpcError) as err:
        stub.SetCalibration(mapping_pb2.SetCalibrationRequest(calibration=singular), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_demo_calibrations_seeded_from_yaml(channel_to) -> None:  # type: ignore[no-untyped-def]
    stub = mapping_pb2_grpc.MappingServiceStub(channel_to("mapping"))
    cals = stub.ListCalibrations(mapping_pb2.ListCalibrationsRequest(video_set="demo"), timeout=5).calibrations
    assert sorted(c.camera_id for c in cals) == ["cam1", "cam2", "cam3", "cam4"]
    assert all(c.source == "yaml" and len(c.homography) == 9 for c in cals)
