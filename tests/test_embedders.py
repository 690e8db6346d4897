"""ReID embedders: the default MobileNetV2, CLIP-ReID, OSNet and Deep SORT checkpoints (built here with the real key
layouts, since real checkpoints cannot be downloaded), on PyTorch and on ONNX Runtime, and a reid service serving
one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from reid_svc import embedders
from reid_svc.embedders import Embedder
from spoton.v1 import reid_pb2, reid_pb2_grpc
from tests.conftest import service_channel

RNG = np.random.default_rng(3)
CROPS = [RNG.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in ((180, 70), (96, 40), (300, 120))]


@pytest.fixture(autouse=True)
def _onnx_cache_in_tmp(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Exports of throwaway checkpoints go to a temporary folder, not the repository's weights/."""
    monkeypatch.setattr(embedders, "WEIGHTS_DIR", tmp_path / "cache")


def clip_reid_checkpoint(path, width: int = 64, layers: int = 2, patch: int = 16, out_dim: int = 32) -> dict:  # type: ignore[no-untyped-def]
    """A CLIP-ReID checkpoint in the published key layout (``image_encoder.*`` in OpenAI CLIP's names, BNNeck
    ``bottleneck*``, ID classifiers, prompt learner), with random tensors; ViT-B/16 is width 768, 12 layers."""
    g = torch.Generator().manual_seed(0)

    def r(*shape: int, scale: float = 0.05) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    sd = {
        "image_encoder.class_embedding": r(width),
        "image_encoder.positional_embedding": r(16 * 8 + 1, width),
        "image_encoder.proj": r(width, out_dim),
        "image_encoder.conv1.weight": r(width, 3, patch, patch),
        "image_encoder.ln_pre.weight": 1 + r(width),
        "image_encoder.ln_pre.bias": r(width),
        "image_encoder.ln_post.weight": 1 + r(width),
        "image_encoder.ln_post.bias": r(width),
    }
    for i in range(layers):
        p = f"image_encoder.transformer.resblocks.{i}."
        sd |= {
            p + "attn.in_proj_weight": r(3 * width, width),
            p + "attn.in_proj_bias": r(3 * width),
            p + "attn.out_proj.weight": r(width, width),
            p + "attn.out_proj.bias": r(width),
            p + "ln_1.weight": 1 + r(width),
            p + "ln_1.bias": r(width),
            p + "mlp.c_fc.weight": r(4 * width, width),
            p + "mlp.c_fc.bias": r(4 * width),
            p + "mlp.c_proj.weight": r(width, 4 * width),
            p + "mlp.c_proj.bias": r(width),
            p + "ln_2.weight": 1 + r(width),
            p + "ln_2.bias": r(width),
        }
    for name, dim in (("bottleneck", width), ("bottleneck_proj", out_dim)):
        sd |= {f"{name}.weight": torch.ones(dim), f"{name}.bias": torch.zeros(dim)}
        sd |= {f"{name}.running_mean": torch.zeros(dim), f"{name}.running_var": torch.ones(dim)}
    sd |= {"classifier.weight": r(751, width), "classifier_proj.weight": r(751, out_dim)}
    sd |= {"prompt_learner.cls_ctx": r(751, 4, 512), "prompt_learner.token_prefix": r(751, 5, 512)}
    torch.save(sd, path)
    return sd


def reference_clip_feature(sd: dict, x: torch.Tensor, heads: int = 1) -> torch.Tensor:
    """CLIP-ReID's test feature written out from the paper's ViT: patchify, class token, positions, pre-LN blocks
    with QuickGELU, ln_post on the class token, then [token, token @ proj]."""
    e = {k.removeprefix("image_encoder."): v for k, v in sd.items() if k.startswith("image_encoder.")}
    width = e["class_embedding"].shape[0]
    t = torch.nn.functional.conv2d(x, e["conv1.weight"], stride=e["conv1.weight"].shape[-1]).flatten(2).transpose(1, 2)
    t = torch.cat([e["class_embedding"].expand(len(x), 1, width), t], 1) + e["positional_embedding"]
    ln = torch.nn.functional.layer_norm
    t = ln(t, (width,), e["ln_pre.weight"], e["ln_pre.bias"])
    i = 0
    while f"transformer.resblocks.{i}.ln_1.weight" in e:
        b = {k.split(".", 3)[3]: v for k, v in e.items() if k.startswith(f"transformer.resblocks.{i}.")}
        h = ln(t, (width,), b["ln_1.weight"], b["ln_1.bias"])
        attn = torch.nn.MultiheadAttention(width, heads, batch_first=True)
        attn.load_state_dict({k.removeprefix("attn."): v for k, v in b.items() if k.startswith("attn.")}, strict=True)
        t = t + attn(h, h, h, need_weights=False)[0]
        h = ln(t, (width,), b["ln_2.weight"], b["ln_2.bias"]) @ b["mlp.c_fc.weight"].T + b["mlp.c_fc.bias"]
        t = t + (h * torch.sigmoid(1.702 * h)) @ b["mlp.c_proj.weight"].T + b["mlp.c_proj.bias"]
        i += 1
    cls = ln(t[:, 0], (width,), e["ln_post.weight"], e["ln_post.bias"])
    return torch.nn.functional.normalize(torch.cat([cls, cls @ e["proj"]], 1), dim=1)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_clip_reid_checkpoint_loads_and_computes_clip_reids_feature(tmp_path, backend) -> None:  # type: ignore[no-untyped-def]
    sd = clip_reid_checkpoint(tmp_path / "clip_market1501.pt")
    emb = Embedder("clip", tmp_path / "clip_market1501.pt", backend=backend)
    assert emb.info.embedding_dim == 64 + 32 and emb.info.input_wh == (128, 256)
    out = emb.embed(CROPS)
    assert out.shape == (3, 96) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    with torch.no_grad():
        ref = reference_clip_feature(sd, torch.from_numpy(emb.preprocess(CROPS))).numpy()
    assert np.abs(out - ref).max() < 1e-4
    if backend == "onnx":
        assert emb.info.backend == "onnxruntime"
        assert list((tmp_path / "cache").glob("reid-clip-*-128x256.onnx"))


def test_osnet_checkpoint_loads_with_boxmots_registry(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from boxmot.reid.core.registry import ReIDModelRegistry

    # A torchreid/boxmot OSNet x0.25 trained on Market-1501 (751 identities): classifier included, as published.
    net = ReIDModelRegistry.build_model("osnet_x0_25", None, num_classes=751, pretrained=False, use_gpu=False)
    torch.nn.init.normal_(net.fc[0].weight, std=0.1)
    path = tmp_path / "osnet_x0_25_market1501.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}, "epoch": 60}, path)
    outs = {}
    for backend in ("torch", "onnx"):
        emb = Embedder("osnet", path, backend=backend)
        assert emb.info.embedding_dim == 512
        outs[backend] = emb.embed(CROPS)
    with torch.no_grad():
        ref = torch.nn.functional.normalize(net.eval()(torch.from_numpy(emb.preprocess(CROPS))), dim=1).numpy()
    assert np.abs(outs["torch"] - ref).max() < 1e-5
    assert np.abs(outs["onnx"] - ref).max() < 1e-4


def test_wrong_or_missing_checkpoints_are_refused_clearly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError, match="not found"):
        Embedder("clip", tmp_path / "absent.pt")
    with pytest.raises(ValueError, match="needs REID_WEIGHTS"):
        Embedder("clip")
    with pytest.raises(ValueError, match="unknown REID_MODEL_TYPE"):
        Embedder("resnet9000")
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "osnet_x1_0_msmt17.pt")
    with pytest.raises(RuntimeError, match="does not match"):
        Embedder("osnet", tmp_path / "osnet_x1_0_msmt17.pt", backend="torch")
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "clip_market1501.pt")
    with pytest.raises(ValueError, match="not a CLIP-ReID checkpoint"):
        Embedder("clip", tmp_path / "clip_market1501.pt", backend="torch")
    clip_reid_checkpoint(tmp_path / "clip_small.pt")
    with pytest.raises(ValueError, match="128x256"):
        Embedder("clip", tmp_path / "clip_small.pt", input_wh=(64, 128), backend="torch")


def test_reid_service_serves_a_clip_reid_checkpoint(tmp_path, stack) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "clip_market1501.pt"
    clip_reid_checkpoint(path)
    env = {"REID_MODEL_TYPE": "clip", "REID_WEIGHTS": str(path), "REID_BACKEND": "torch"}
    addr = stack.start_replica("reid", "reid-clip", env)
    try:
        with service_channel(addr) as channel:
            stub = reid_pb2_grpc.ReidServiceStub(channel)
            info = stub.GetModelInfo(reid_pb2.ReidServiceGetModelInfoRequest(), timeout=30).info
            assert (info.name, info.embedding_dim, list(info.input_size)) == ("clip", 96, [128, 256])
            assert info.weights_source == str(path)
    finally:
        stack.kill("reid-clip")


def deepsort_checkpoint(path, num_classes: int = 751) -> dict:  # type: ignore[no-untyped-def]
    """A Deep SORT ReID checkpoint in deep_sort_pytorch's layout (``{"net_dict": …, "acc", "epoch"}``; stem
    ``conv.*``, four stages of two BasicBlocks, ``classifier.*``), random tensors, as ``ckpt.t7`` is laid out."""
    g = torch.Generator().manual_seed(1)

    def r(*shape: int, scale: float = 0.1) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    def bn(prefix: str, c: int) -> dict:
        return {
            f"{prefix}.weight": 1 + r(c),
            f"{prefix}.bias": r(c),
            f"{prefix}.running_mean": r(c),
            f"{prefix}.running_var": 1 + r(c).abs(),
        }

    sd = {"conv.0.weight": r(64, 3, 3, 3), "conv.0.bias": r(64)} | bn("conv.1", 64)
    for layer, (c_in, c_out) in enumerate(((64, 64), (64, 128), (128, 256), (256, 512)), start=1):
        for block in (0, 1):
            p, cin = f"layer{layer}.{block}", c_in if block == 0 else c_out
            sd |= {f"{p}.conv1.weight": r(c_out, cin, 3, 3, scale=0.05)} | bn(f"{p}.bn1", c_out)
            sd |= {f"{p}.conv2.weight": r(c_out, c_out, 3, 3, scale=0.05)} | bn(f"{p}.bn2", c_out)
            if block == 0 and layer > 1:
                sd |= {f"{p}.downsample.0.weight": r(c_out, cin, 1, 1)} | bn(f"{p}.downsample.1", c_out)
    sd |= {"classifier.0.weight": r(256, 512), "classifier.0.bias": r(256)} | bn("classifier.1", 256)
    sd |= {"classifier.4.weight": r(num_classes, 256), "classifier.4.bias": r(num_classes)}
    torch.save({"net_dict": sd, "acc": 0.9, "epoch": 40}, path)
    return sd


def reference_deepsort_feature(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """deep_sort_pytorch's ``Net(reid=True).forward`` written out functionally: stem conv-BN-ReLU-maxpool, the
    BasicBlocks (stride 2 and a 1x1 projection opening stages 2-4), 8x4 average pool, L2 norm."""
    F = torch.nn.functional

    def bn(t: torch.Tensor, p: str) -> torch.Tensor:
        return F.batch_norm(t, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"])

    t = F.relu(bn(F.conv2d(x, sd["conv.0.weight"], sd["conv.0.bias"], padding=1), "conv.1"))
    t = F.max_pool2d(t, 3, 2, padding=1)
    for layer in range(1, 5):
        for block in (0, 1):
            p = f"layer{layer}.{block}"
            stride = 2 if block == 0 and layer > 1 else 1
            y = F.relu(bn(F.conv2d(t, sd[f"{p}.conv1.weight"], stride=stride, padding=1), f"{p}.bn1"))
            y = bn(F.conv2d(y, sd[f"{p}.conv2.weight"], padding=1), f"{p}.bn2")
            if f"{p}.downsample.0.weight" in sd:
                t = bn(F.conv2d(t, sd[f"{p}.downsample.0.weight"], stride=stride), f"{p}.downsample.1")
            t = F.relu(t + y)
    return F.normalize(F.avg_pool2d(t, (8, 4), 1).flatten(1), dim=1)


def test_deepsort_checkpoint_loads_strictly_and_onnx_matches_torch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sd = deepsort_checkpoint(tmp_path / "ckpt.t7")
    outs = {}
    for backend in ("torch", "onnx"):
        emb = Embedder("deepsort", tmp_path / "ckpt.t7", backend=backend)
        assert (emb.info.embedding_dim, emb.info.input_wh) == (512, (64, 128))
        outs[backend] = emb.embed(CROPS)
    assert emb.info.backend == "onnxruntime" and list((tmp_path / "cache").glob("reid-deepsort-*-64x128.onnx"))
    with torch.no_grad():
        ref = reference_deepsort_feature(sd, torch.from_numpy(emb.preprocess(CROPS))).numpy()
    assert np.abs(outs["torch"] - ref).max() < 1e-5
    assert np.abs(outs["onnx"] - ref).max() < 1e-4
    # Batched: one crop alone embeds as it does in a batch.
    assert np.abs(emb.embed(CROPS[1:2])[0] - outs["onnx"][1]).max() < 1e-5


def test_deepsort_refuses_other_checkpoints_and_crop_sizes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch.save({"state_dict": {"conv.0.weight": torch.zeros(1)}}, tmp_path / "other.t7")
    with pytest.raises(ValueError, match="not a Deep SORT ReID checkpoint"):
        Embedder("deepsort", tmp_path / "other.t7", backend="torch")
    sd = deepsort_checkpoint(tmp_path / "ckpt.t7")
    del sd["layer2.0.downsample.0.weight"]
    torch.save({"net_dict": sd}, tmp_path / "partial.t7")
    with pytest.raises(RuntimeError, match="Missing key"):
        Embedder("deepsort", tmp_path / "partial.t7", backend="torch")
    with pytest.raises(ValueError, match="64x128"):
        Embedder("deepsort", tmp_path / "ckpt.t7", input_wh=(128, 256), backend="torch")
    with pytest.raises(FileNotFoundError, match="make weights"):
        Embedder("deepsort", tmp_path / "absent.t7")


def test_the_real_deepsort_checkpoint_loads_when_present() -> None:
    """``weights/deepsort_ckpt.t7`` as ``make weights`` unpacks it from ``pymot==0.0.5``: 11.5 M parameters, strict
    load, ONNX Runtime within 1e-4 of PyTorch. (How well it tells people apart: bench/embedder_eval.py.)"""
    path = Path(embedders.__file__).resolve().parent.parent / "weights" / embedders.DEEPSORT_CHECKPOINT
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing: run make weights")
        pytest.skip(f"{path} is missing (make weights unpacks it)")
    model = embedders._deepsort(path, (64, 128)).eval()
    assert sum(p.numel() for p in model.parameters()) == 11_493_743
    onnx = Embedder("deepsort", path)
    with torch.no_grad():
        ref = model(torch.from_numpy(onnx.preprocess(CROPS))).numpy()
    out = onnx.embed(CROPS)
    assert out.shape == (3, 512) and np.abs(out - ref).max() < 1e-4


@pytest.mark.parametrize("model_type", ["mobilenetv2", "deepsort"])
def test_openvino_runtime_gives_onnx_runtimes_embeddings(tmp_path, model_type) -> None:  # type: ignore[no-untyped-def]
    """REID_BACKEND=openvino runs the same exported network as ONNX Runtime, batched, with the same embeddings
    (FP32 on both: OpenVINO's bf16 default on AMX CPUs would move them)."""
    weights = None
    if model_type == "deepsort":
        weights = tmp_path / "ckpt.t7"
        deepsort_checkpoint(weights)
    crops = CROPS * 3  # a batch of 9 and then single crops: the dynamic batch is compiled once
    outs = {b: Embedder(model_type, weights, backend=b, threads=1) for b in ("onnx", "openvino")}
    assert outs["openvino"].info.backend == "openvino" and outs["onnx"].info.backend == "onnxruntime"
    emb = {b: e.embed(crops) for b, e in outs.items()}
    assert emb["openvino"].shape == emb["onnx"].shape == (9, outs["onnx"].info.embedding_dim)
    assert np.abs(emb["openvino"] - emb["onnx"]).max() < 1e-4
    assert (emb["openvino"] * emb["onnx"]).sum(axis=1).min() > 0.9999
    single = outs["openvino"].embed(CROPS[2:3])
    assert np.abs(single[0] - emb["onnx"][2]).max() < 1e-4
    assert outs["openvino"].crops == 10 and outs["openvino"].calls == 2


def test_auto_runtime_follows_the_measured_cpu_table() -> None:
    assert embedders.cpu_runtime(frozenset({"avx2", "avx512f"}), openvino_installed=True) == "openvino"
    assert embedders.cpu_runtime(frozenset({"avx2", "amx_bf16"}), openvino_installed=True) == "openvino"
    assert embedders.cpu_runtime(frozenset({"avx2", "avx512f"}), openvino_installed=False) == "onnx"
    assert embedders.cpu_runtime(frozenset({"avx2", "fma"}), openvino_installed=True) == "onnx"  # AMD EPYC here
    assert embedders.cpu_runtime(frozenset({"sse4_2"}), openvino_installed=True) == "onnx"
    expected = embedders.cpu_runtime(embedders.cpu_flags(), True)
    assert Embedder("mobilenetv2").info.backend == {"onnx": "onnxruntime"}.get(expected, expected)
    with pytest.raises(ValueError, match="REID_BACKEND must be one of"):
        Embedder("mobilenetv2", backend="tensorrt")


# ---- the colour cue and each camera's colour cast (spoton/colour.py) ------------------------------------------------
CASTS = {"east": (1.2, 1.0, 0.8), "west": (0.8, 1.0, 1.2)}  # BGR gains of two cameras' white balance


def dressed_people(n: int, seed: int = 5) -> list[np.ndarray]:
    """``n`` synthetic people, 128x48 BGR: a shirt and trousers of random colours, skin-toned head, noise."""
    rng = np.random.default_rng(seed)
    people = []
    for _ in range(n):
        p = np.empty((128, 48, 3), np.float32)
        p[:24] = (90, 120, 170)
        p[24:70] = rng.uniform(30, 220, 3)
        p[70:] = rng.uniform(30, 220, 3)
        people.append(np.clip(p + rng.normal(0, 6, p.shape), 0, 255).astype(np.uint8))
    return people


def seen_by(crop: np.ndarray, camera: str) -> np.ndarray:
    return np.clip(crop.astype(np.float32) * np.array(CASTS[camera], np.float32), 0, 255).astype(np.uint8)


def test_camera_colour_learns_each_cameras_cast_from_the_people_it_sees() -> None:
    """The median person colour of a camera, mapped to grey, undoes its white balance: two cameras with opposite
    casts (+-20 %) get gains whose product with their cast is the same for both (up to one overall scale and the
    clipping of bright colours); none before
    ``min_crops`` crops; the correction makes their colour histograms of one person agree."""
    from reid_svc.embedders import colour_histogram
    from spoton.colour import CameraColour, apply_gains

    people = dressed_people(60)
    colour = CameraColour(min_crops=32)
    colour.observe("east", [seen_by(p, "east") for p in people[:20]])
    assert colour.gains("east") is None and colour.gains("west") is None
    for camera in CASTS:
        colour.observe(camera, [seen_by(p, camera) for p in people])
    corrected = {c: colour.gains(c) * np.array(CASTS[c]) for c in CASTS}
    assert np.allclose(
        corrected["east"] / corrected["east"].mean(), corrected["west"] / corrected["west"].mean(), atol=0.05
    )
    person = dressed_people(1, seed=99)[0]
    raw = [colour_histogram(seen_by(person, c)) for c in CASTS]
    fixed = [colour_histogram(apply_gains([seen_by(person, c)], colour.gains(c))[0]) for c in CASTS]
    assert float(fixed[0] @ fixed[1]) > float(raw[0] @ raw[1]) + 0.1
    assert apply_gains([person], None)[0] is person


def test_colour_fused_embedding_is_the_weighted_mean_of_both_cosines() -> None:
    """REID_COLOUR_WEIGHT=w: the network's embedding and the colour histograms concatenated so that the cosine of
    two fused embeddings is (1 - w) x the network's + w x the histograms'; unit norm; 512 more dimensions."""
    from reid_svc.embedders import COLOUR_DIM, colour_histogram

    plain, fused = Embedder("mobilenetv2"), Embedder("mobilenetv2", colour_weight=0.7)
    assert fused.info.embedding_dim == plain.info.embedding_dim + COLOUR_DIM
    assert fused.info.name == "mobilenetv2+colour0.7"
    a, b = dressed_people(2)
    ea, eb = fused.embed([a, b])
    assert np.allclose(np.linalg.norm([ea, eb], axis=1), 1.0, atol=1e-5)
    na, nb = plain.embed([a, b])
    want = 0.3 * float(na @ nb) + 0.7 * float(colour_histogram(a) @ colour_histogram(b))
    assert abs(float(ea @ eb) - want) < 1e-4
    with pytest.raises(ValueError, match="REID_COLOUR_WEIGHT"):
        Embedder("mobilenetv2", colour_weight=1.0)


def test_reid_stream_corrects_each_cameras_colour_cast(stack) -> None:  # type: ignore[no-untyped-def]
    """One EmbedStream with the colour cue on: from the context boxes of the first messages (every person of each
    frame) reid learns each camera's cast, after which one person seen by two differently balanced cameras embeds
    far closer than on the first message, when no cast was known yet."""
    from spoton.domain import boxes_to_proto, tensor_to_array
    from spoton.frames import encode_frame
    from spoton.v1 import common_pb2

    people = dressed_people(6)
    scene = np.full((200, 6 * 60, 3), 128, np.uint8)
    xyxy = np.array([[10 + 60 * i, 40, 58 + 60 * i, 168] for i in range(6)], np.float32)
    for (x1, y1, x2, y2), p in zip(xyxy.astype(int), people, strict=True):
        scene[y1:y2, x1:x2] = p
    addr = stack.start_replica("reid", "reid-colour", {"REID_COLOUR_WEIGHT": "0.7"})
    try:
        with service_channel(addr) as channel:
            stub = reid_pb2_grpc.ReidServiceStub(channel)

            def step(k: int) -> reid_pb2.EmbedStreamRequest:
                items = [
                    reid_pb2.FrameBoxes(
                        frame=encode_frame(seen_by(scene, c), c, k, 0, common_pb2.FRAME_ENCODING_PNG),
                        boxes=boxes_to_proto(xyxy[:1]),
                        context=boxes_to_proto(xyxy),
                    )
                    for c in CASTS
                ]
                return reid_pb2.EmbedStreamRequest(step=k, items=items, purpose=reid_pb2.EMBEDDING_PURPOSE_IDENTITY)

            replies = list(stub.EmbedStream(iter([step(k) for k in range(1, 9)]), timeout=120))
    finally:
        stack.kill("reid-colour")
    cos = []
    for r in replies:
        east, west = (tensor_to_array(t).reshape(1, -1)[0] for t in r.embeddings)
        assert east.size == 1280 + 512
        cos.append(float(east @ west))
    assert cos[-1] > cos[0] + 0.05, cos
