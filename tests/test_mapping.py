"""Floor mapping: geometry core and the MappingService over gRPC."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from mapping_svc.geometry import CameraGeometry, fit_homography, floor_sign
from spoton.demo.data import PETS_VIEW1_HOMOGRAPHY
from spoton.v1 import common_pb2, mapping_pb2, mapping_pb2_grpc
from tests.conftest import gwapi

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


def test_distortion_round_trip() -> None:
    """Points seen through a distorting lens project to the right floor point once the lens model is given."""
    import cv2

    from mapping_svc.calibrations import build_calibration

    k = np.array([[600.0, 0, 384], [0, 600.0, 288], [0, 0, 1]])
    dist = np.array([-0.25, 0.08, 0.001, -0.0005, 0.0])
    ideal = np.array([[100, 500], [700, 480], [600, 250], [200, 260], [400, 350], [300, 420], [520, 300.0]])
    normalised = cv2.undistortPoints(ideal.reshape(-1, 1, 2), k, None).reshape(-1, 2)
    distorted = cv2.projectPoints(
        np.concatenate([normalised, np.ones((len(ideal), 1))], axis=1), np.zeros(3), np.zeros(3), k, dist
    )[0].reshape(-1, 2)
    floor = floor_of(ideal)
    cal = build_calibration("t", "c", distorted, floor, camera_matrix=k, dist_coeffs=dist)
    assert cal.reprojection_error_m < 1e-3
    np.testing.assert_allclose(cal.geometry().project(distorted).xy_m, floor, atol=1e-3)
    # Ignoring the lens would be centimetres to metres off.
    plain = build_calibration("t", "c", distorted, floor)
    assert plain.reprojection_error_m > 0.01


def test_pg_store_versions_and_yaml_precedence(database_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import uuid

    from mapping_svc.calibrations import PgCalibrationStore, build_calibration
    from spoton.db import apply_migrations
    from spoton.launcher import REPO
    from spoton.videoset import load_video_set

    apply_migrations(database_url, REPO / "mapping_svc" / "migrations", "mapping")
    name = f"vs-{uuid.uuid4().hex[:8]}"
    h1 = PETS_VIEW1_HOMOGRAPHY.tolist()
    h2 = (PETS_VIEW1_HOMOGRAPHY * [[1, 1, 1], [1, 1, 1.01], [1, 1, 1]]).tolist()

    def write_yaml(h):  # type: ignore[no-untyped-def]
        path = tmp_path / "set.yaml"
        path.write_text(
            f"name: {name}\nfloor: {{width_m: 10, height_m: 10}}\n"
            f"cameras:\n  - {{id: c1, source: x.mp4, homography: {h}}}\n"
        )
        return load_video_set(path)

    store = PgCalibrationStore(database_url)
    assert store.seed(write_yaml(h1)) == 1
    assert store.seed(write_yaml(h1)) == 0  # restart with the same YAML: nothing new
    api = store.put(build_calibration(name, "c1", np.array(IMAGE, float), floor_of(IMAGE)))
    assert api.version == 2 and api.source == "api"
    assert store.seed(write_yaml(h1)) == 0  # the API calibration wins while the YAML is unchanged
    fresh = PgCalibrationStore(database_url)  # another replica / a restart sees it
    assert fresh.get(name, "c1").source == "api" and fresh.get(name, "c1").version == 2
    np.testing.assert_allclose(fresh.get(name, "c1").points_image, np.array(IMAGE, float))
    assert store.seed(write_yaml(h2)) == 1  # the YAML changed: it wins again
    latest = fresh.get(name, "c1")
    assert latest.source == "yaml" and latest.version == 3
    assert [c.camera_id for c in fresh.list(name)] == ["c1"]


def forget_calibrations(database_url: str, video_set: str, camera_id: str) -> None:
    """Delete every stored calibration of one camera (the test database outlives a run)."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM calibrations WHERE video_set = %s AND camera_id = %s", (video_set, camera_id))


def test_gateway_calibration_endpoints(stack, database_url) -> None:  # type: ignore[no-untyped-def]
    import cv2

    base = f"{stack.gateway_url}/api/v1/video-sets/demo/cameras/cam2/calibration"
    got = gwapi.get(base, timeout=10).json()
    assert len(got["homography"]) == 3 and got["source"] == "yaml"
    for picture in ("overlay.png", "birdseye.png"):
        r = gwapi.get(f"{base}/{picture}", params={"frame": 5}, timeout=30)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape[0] > 100
    overlay_img = cv2.imdecode(np.frombuffer(gwapi.get(f"{base}/overlay.png", timeout=30).content, np.uint8), 1)
    frame = cv2.VideoCapture(str(stack.env["VIDEO_SETS_DIR"]) + "/cam2.mp4").read()[1]
    assert (np.abs(overlay_img.astype(int) - frame.astype(int)).sum(axis=2) > 60).mean() > 0.01  # grid drawn

    pairs = [{"image": list(i), "floor": f.tolist()} for i, f in zip(IMAGE, floor_of(IMAGE), strict=True)]
    fit = gwapi.post(f"{base}/fit", json={"points": pairs}, timeout=10).json()
    assert fit["reprojection_error_m"] < 1e-4 and all(fit["inliers"])
    bad = gwapi.post(f"{base}/fit", json={"points": pairs[:3]}, timeout=10)
    assert bad.status_code == 400 and "4" in bad.json()["error"]["message"]
    unknown = gwapi.get(f"{stack.gateway_url}/api/v1/video-sets/demo/cameras/nope/calibration", timeout=10)
    assert unknown.status_code == 404
    # The empty set's camera has no homography in its YAML: uncalibrated until the PUT below (which an earlier run
    # of this test stored in the same database, so it is forgotten first and again at the end).
    blank = f"{stack.gateway_url}/api/v1/video-sets/empty/cameras/blank/calibration"
    forget_calibrations(database_url, "empty", "blank")
    try:
        empty = gwapi.get(blank, timeout=10)
        # Measured: 409 failed_precondition "camera 'blank' of video set 'empty' has no calibration".
        assert empty.status_code == 409 and empty.json()["error"]["code"] == "failed_precondition", empty.text
        put = gwapi.put(blank, json={"points": pairs}, timeout=10)
        assert put.status_code == 200 and put.json()["calibration"]["source"] == "api"
        got = gwapi.get(blank, timeout=10)
        assert got.status_code == 200 and got.json()["source"] == "api" and len(got.json()["homography"]) == 3
        nan = gwapi.put(blank, json={"homography": [[0, 0, 0], [0, 0, 0], [0, 0, 0]]}, timeout=10)
        assert nan.status_code == 400
    finally:
        forget_calibrations(database_url, "empty", "blank")


def _check_versions_and_rollback(store, name: str) -> None:  # type: ignore[no-untyped-def]
    """Shared by the memory and PostgreSQL stores: every version kept, rollback appends a copy, errors are typed."""
    from mapping_svc.calibrations import build_calibration
    from spoton.bootstrap.errors import NotFoundError, PreconditionError

    first = store.put(build_calibration(name, "c1", np.array(IMAGE, float), floor_of(IMAGE)))
    shifted = floor_of(IMAGE) + np.array([1.0, 0.5])
    second = store.put(build_calibration(name, "c1", np.array(IMAGE, float), shifted))
    assert (first.version, second.version) == (1, 2) and second.created_ns >= first.created_ns > 0
    assert store.get(name, "c1").version == 2
    np.testing.assert_allclose(store.get(name, "c1", 1).homography, first.homography)
    back = store.rollback(name, "c1", 1)
    assert (back.version, back.source, back.restored_from) == (3, "rollback", 1)
    np.testing.assert_allclose(back.homography, first.homography)
    np.testing.assert_allclose(back.points_floor, floor_of(IMAGE))
    assert store.rollback(name, "c1", 1).version == 3  # already current: nothing stored
    assert store.rollback(name, "c1", 3).version == 3
    history = store.versions(name, "c1")
    assert [(c.version, c.source, c.restored_from) for c in history] == [
        (1, "api", 0),
        (2, "api", 0),
        (3, "rollback", 1),
    ]
    np.testing.assert_allclose(history[1].points_floor, shifted)  # the rolled-back-from version is untouched
    assert store.get(name, "c1").version == 3
    with pytest.raises(NotFoundError, match="version 9"):
        store.get(name, "c1", 9)
    with pytest.raises(NotFoundError):
        store.rollback(name, "c1", 9)
    with pytest.raises(ValueError, match=">= 0"):
        store.get(name, "c1", -1)
    with pytest.raises(ValueError, match=">= 1"):
        store.rollback(name, "c1", 0)
    with pytest.raises(PreconditionError):
        store.get(name, "never")
    assert store.versions(name, "never") == []


def test_memory_store_versions_and_rollback() -> None:
    from mapping_svc.calibrations import MemoryCalibrationStore

    _check_versions_and_rollback(MemoryCalibrationStore(), "mem")


def test_pg_store_versions_and_rollback(database_url) -> None:  # type: ignore[no-untyped-def]
    import uuid

    from mapping_svc.calibrations import PgCalibrationStore
    from spoton.db import apply_migrations
    from spoton.launcher import REPO

    apply_migrations(database_url, REPO / "mapping_svc" / "migrations", "mapping")
    name = f"vs-{uuid.uuid4().hex[:8]}"
    try:
        _check_versions_and_rollback(PgCalibrationStore(database_url), name)
    finally:
        forget_calibrations(database_url, name, "c1")


def test_calibration_versions_over_grpc(channel_to) -> None:  # type: ignore[no-untyped-def]
    import uuid

    stub = mapping_pb2_grpc.MappingServiceStub(channel_to("mapping"))
    name = f"t-ver-{uuid.uuid4().hex[:6]}"
    for floor in (floor_of(IMAGE), floor_of(IMAGE) + np.array([2.0, 0.0])):
        cal = mapping_pb2.Calibration(video_set=name, camera_id="c1", points=_pairs(IMAGE, floor))
        stub.SetCalibration(mapping_pb2.SetCalibrationRequest(calibration=cal), timeout=5)
    listed = stub.ListCalibrationVersions(
        mapping_pb2.ListCalibrationVersionsRequest(video_set=name, camera_id="c1"), timeout=5
    ).calibrations
    assert [c.version for c in listed] == [1, 2] and all(c.created_ns > 0 and c.source == "api" for c in listed)
    old = stub.GetCalibration(mapping_pb2.GetCalibrationRequest(video_set=name, camera_id="c1", version=1), timeout=5)
    assert list(old.calibration.homography) == list(listed[0].homography)
    back = stub.RollbackCalibration(
        mapping_pb2.RollbackCalibrationRequest(video_set=name, camera_id="c1", version=1), timeout=5
    ).calibration
    assert (back.version, back.source, back.restored_from) == (3, "rollback", 1)
    # Projection follows the rolled-back calibration at once (the servicer drops its cached geometry).
    out = stub.Project(
        mapping_pb2.ProjectRequest(video_set=name, camera_id="c1", points=[common_pb2.Point2(x=384, y=400)]), timeout=5
    )
    expected = floor_of([(384, 400)])[0]
    assert abs(out.points[0].floor.x_m - expected[0]) < 1e-3 and abs(out.points[0].floor.y_m - expected[1]) < 1e-3
    for call, request, code in (
        (
            stub.GetCalibration,
            mapping_pb2.GetCalibrationRequest(video_set=name, camera_id="c1", version=7),
            "NOT_FOUND",
        ),
        (stub.GetCalibration, mapping_pb2.GetCalibrationRequest(video_set=name, camera_id="c1", version=-1), "INVALID"),
        (
            stub.RollbackCalibration,
            mapping_pb2.RollbackCalibrationRequest(video_set=name, camera_id="c1", version=7),
            "NOT_FOUND",
        ),
        (
            stub.RollbackCalibration,
            mapping_pb2.RollbackCalibrationRequest(video_set=name, camera_id="zz", version=1),
            "NOT_FOUND",
        ),
        (stub.RollbackCalibration, mapping_pb2.RollbackCalibrationRequest(video_set=name, camera_id="c1"), "INVALID"),
        (stub.ListCalibrationVersions, mapping_pb2.ListCalibrationVersionsRequest(video_set=name), "INVALID"),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call(request, timeout=5)
        assert err.value.code().name.startswith(code), (request, err.value.code())
    fit = stub.FitCalibration(
        mapping_pb2.FitCalibrationRequest(points=_pairs(IMAGE, [*floor_of(IMAGE)[:4], [40.0, 40.0]])), timeout=5
    )
    # Measured: the wrong fifth floor point is a RANSAC outlier, tens of metres off; the other four fit exactly.
    assert (
        max(fit.point_errors_m[:4]) < 1e-3 and fit.point_errors_m[4] > 5 and list(fit.inliers) == [True] * 4 + [False]
    )
