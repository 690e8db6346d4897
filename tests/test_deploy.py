"""Deployment files, checked offline: the Helm chart rendered by Helm's own library and validated against the
Kubernetes 1.32 schemas, the committed manifests, the Dockerfiles and the Compose files (DESIGN §8)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from spoton import helmchart

REPO = Path(__file__).resolve().parent.parent
SERVICES = {
    "detection_svc": "detection",
    "tracking_svc": "tracking",
    "reid_svc": "reid",
    "mapping_svc": "mapping",
    "analytics_svc": "analytics",
    "gateway": "gateway",
}
GPU_STAGES = {"detection", "reid"}


@pytest.fixture(scope="module")
def cpu_objects() -> list[dict]:
    return helmchart.objects(helmchart.render())


@pytest.fixture(scope="module")
def gpu_objects() -> list[dict]:
    values = helmchart.load_values(helmchart.CHART / "values-gpu.yaml")
    return helmchart.objects(helmchart.render(values))


def of_kind(objs: list[dict], kind: str) -> dict[str, dict]:
    return {
        o["metadata"]["labels"].get("app.kubernetes.io/component", o["metadata"]["name"]): o
        for o in objs
        if o["kind"] == kind
    }


def test_chart_lints_clean() -> None:
    import helm_python

    report = helm_python.lint(helmchart.CHART, strict=True, kube_version="v" + helmchart.KUBE_VERSION)
    assert not report["errors"], report
    assert all(m["severity"] < 2 for m in report["messages"]), report["messages"]


@pytest.mark.parametrize("profile", ["cpu_objects", "gpu_objects"])
def test_every_rendered_object_is_valid_kubernetes(profile: str, request: pytest.FixtureRequest) -> None:
    objs = request.getfixturevalue(profile)
    helmchart.validate(objs)
    kinds = {o["kind"] for o in objs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    assert {"ConfigMap", "Secret", "StatefulSet"} <= kinds


def test_a_broken_object_is_refused_by_the_validator(cpu_objects: list[dict]) -> None:
    import kubernetes_validate

    bad = yaml.safe_load(yaml.safe_dump(of_kind(cpu_objects, "Deployment")["detection"]))
    bad["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = {"many": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        helmchart.validate([bad])


def test_committed_manifests_match_a_fresh_render() -> None:
    committed = (helmchart.MANIFESTS / "spoton.yaml").read_text()
    assert committed == helmchart.manifest_text(helmchart.render(helmchart.PLAIN_VALUES)), "run `make manifests`"


SECRET_KEYS = ("SERVICE_API_KEY", "ADMIN_API_KEY", "AUTH_SECRET", "POSTGRES_PASSWORD")


def env_of(dep: dict) -> dict[str, dict]:
    return {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_secrets_are_generated_never_committed(cpu_objects: list[dict]) -> None:
    """No password or key in the chart or the committed manifests: each is generated at install (kept on upgrades
    through ``lookup``), given, or in an ``existingSecret``; pods read them from the Secret only."""
    assert "change-me" not in (helmchart.CHART / "values.yaml").read_text()
    first = next(o for o in cpu_objects if o["kind"] == "Secret")["stringData"]
    second = next(o for o in helmchart.objects(helmchart.render()) if o["kind"] == "Secret")["stringData"]
    for key in SECRET_KEYS:
        assert len(first[key]) >= 32 and first[key].isalnum() and first[key] != second[key], key
    assert f":{first['POSTGRES_PASSWORD']}@" in first["DATABASE_URL"]
    given = {"serviceApiKey": "svc-" + "x" * 30, "adminApiKey": "adm-" + "y" * 30, "timescaledb": {"password": "pw1"}}
    secret = next(o for o in helmchart.objects(helmchart.render(given)) if o["kind"] == "Secret")["stringData"]
    assert (secret["SERVICE_API_KEY"], secret["ADMIN_API_KEY"], secret["POSTGRES_PASSWORD"]) == (
        given["serviceApiKey"],
        given["adminApiKey"],
        "pw1",
    )
    # Every service gets the gateway's service key (SERVICE_KEY: the gateway sends it, the stages accept no other);
    # only the gateway gets client keys: the admin key from the Secret plus values.apiKeys, composed by reference.
    for name, dep in of_kind(cpu_objects, "Deployment").items():
        env = env_of(dep)
        for var, entry in env.items():
            if any(w in var for w in ("KEY", "PASSWORD", "DATABASE_URL", "REDIS_URL", "SECRET")):
                if "value" in entry:  # only references to other variables of the pod, never a secret itself
                    assert re.fullmatch(r"(\$\([A-Z_]+\)[:a-z,]*)+", entry["value"]), (var, entry["value"])
                    continue
                assert entry["valueFrom"]["secretKeyRef"]["name"] == "spoton-secrets", var
        assert env["SERVICE_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "SERVICE_API_KEY"
        client_keys = {"ADMIN_API_KEY", "EXTRA_API_KEYS", "API_KEYS", "AUTH_SECRET"}
        assert (client_keys <= set(env)) == (name == "gateway") and (client_keys & set(env) == set()) != (
            name == "gateway"
        ), name
        if name == "gateway":
            assert env["API_KEYS"]["value"] == "$(ADMIN_API_KEY):admin,$(EXTRA_API_KEYS)"
    # The committed manifests carry no Secret at all: they name one the operator creates.
    plain = list(yaml.safe_load_all((helmchart.MANIFESTS / "spoton.yaml").read_text()))
    assert not [o for o in plain if o and o["kind"] == "Secret"]
    text = (helmchart.MANIFESTS / "spoton.yaml").read_text()
    assert first["SERVICE_API_KEY"] not in text and "postgresql://spoton:" not in text.split("\napiVersion", 1)[1]


def test_chart_renders_with_tls_and_validates() -> None:
    on = helmchart.objects(helmchart.render({"tls": {"enabled": True, "secretName": "spoton-certs"}}))
    helmchart.validate(on)
    for name, dep in of_kind(on, "Deployment").items():
        pod = dep["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        env = env_of(dep)
        assert {"name": "tls", "secret": {"secretName": "spoton-certs", "defaultMode": 0o440}} in pod["volumes"]
        assert {"name": "tls", "mountPath": "/etc/spoton/tls", "readOnly": True} in c["volumeMounts"]
        # Every pod is a TLS client with its certificate (the gateway's calls, the probes), mutual by default.
        assert env["GRPC_TLS_CA"]["value"] == "/etc/spoton/tls/ca.crt"
        assert env["GRPC_TLS_CLIENT_CERT"]["value"] == "/etc/spoton/tls/tls.crt"
        assert env["GRPC_TLS_CLIENT_KEY"]["value"] == "/etc/spoton/tls/tls.key"
        if name == "gateway":
            assert "GRPC_TLS_CERT" not in env and c["readinessProbe"]["httpGet"]["path"] == "/health"
            continue
        assert env["GRPC_TLS_CERT"]["value"] == "/etc/spoton/tls/tls.crt"
        assert env["GRPC_TLS_CLIENT_CA"]["value"] == "/etc/spoton/tls/ca.crt"
        port = next(p["containerPort"] for p in c["ports"] if p["name"] == "grpc")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert "grpc" not in c[probe]  # Kubernetes' gRPC probe cannot speak TLS
            assert c[probe]["exec"]["command"] == ["python", "-m", "spoton.bootstrap.probe", f"localhost:{port}"]
    one_way = helmchart.objects(helmchart.render({"tls": {"enabled": True, "secretName": "c", "mutual": False}}))
    for dep in of_kind(one_way, "Deployment").values():
        assert not {"GRPC_TLS_CLIENT_CA", "GRPC_TLS_CLIENT_CERT", "GRPC_TLS_CLIENT_KEY"} & set(env_of(dep))
    # cert-manager issues one certificate naming every Service (and localhost for the probes).
    issuer = {"enabled": True, "issuerRef": {"name": "spoton-ca", "kind": "Issuer"}}
    cm = helmchart.objects(helmchart.render({"tls": {"enabled": True, "certManager": issuer}}, namespace="cams"))
    helmchart.validate(cm)
    (cert,) = [o for o in cm if o["kind"] == "Certificate"]
    assert cert["spec"]["secretName"] == "spoton-tls" and cert["spec"]["issuerRef"]["name"] == "spoton-ca"
    assert {"server auth", "client auth"} <= set(cert["spec"]["usages"])
    for name in SERVICES.values():
        assert {f"spoton-{name}", f"spoton-{name}.cams.svc", "localhost"} <= set(cert["spec"]["dnsNames"])
    vols = of_kind(cm, "Deployment")["detection"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "tls", "secret": {"secretName": "spoton-tls", "defaultMode": 0o440}} in vols
    # Off by default: plaintext gRPC probes, no certificate anywhere.
    off = helmchart.objects(helmchart.render())
    assert not [o for o in off if o["kind"] == "Certificate"]
    detection = of_kind(off, "Deployment")["detection"]["spec"]["template"]["spec"]["containers"][0]
    assert "grpc" in detection["livenessProbe"] and "GRPC_TLS_CA" not in {e["name"] for e in detection["env"]}
    with pytest.raises(Exception, match=r"tls\.secretName"):
        helmchart.render({"tls": {"enabled": True}})


def test_gpu_profile_puts_detection_and_reid_on_gpu_nodes(gpu_objects: list[dict], cpu_objects: list[dict]) -> None:
    for name, dep in of_kind(gpu_objects, "Deployment").items():
        pod = dep["spec"]["template"]["spec"]
        limits = pod["containers"][0]["resources"]["limits"]
        if name in GPU_STAGES:
            assert limits["nvidia.com/gpu"] == 1
            assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
            assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
            assert pod["containers"][0]["image"].endswith("-cuda")
        else:
            assert "nvidia.com/gpu" not in limits and "nodeSelector" not in pod
    for dep in of_kind(cpu_objects, "Deployment").values():
        pod = dep["spec"]["template"]["spec"]
        assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
        assert not pod["containers"][0]["image"].endswith("-cuda")


def test_pods_are_locked_down_and_probed(cpu_objects: list[dict]) -> None:
    deployments = of_kind(cpu_objects, "Deployment")
    assert set(deployments) == set(SERVICES.values())
    for name, dep in deployments.items():
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        (c,) = pod["containers"]
        sc = c["securityContext"]
        assert (
            sc["readOnlyRootFilesystem"]
            and not sc["allowPrivilegeEscalation"]
            and sc["capabilities"]["drop"] == ["ALL"]
        )
        assert (
            c["resources"]["requests"]["cpu"]
            and c["resources"]["requests"]["memory"]
            and c["resources"]["limits"]["memory"]
        )
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if name == "gateway":
                assert c[probe]["httpGet"]["path"] == "/health"
            else:
                assert c[probe]["grpc"]["port"] == ports["grpc"]
        env = {e["name"] for e in c["env"]}
        assert "SERVICE_KEY" in env
        assert ("DATABASE_URL" in env) == (name in {"reid", "mapping", "analytics", "gateway"})


def test_stages_are_reachable_from_the_gateway_only(cpu_objects: list[dict]) -> None:
    policies = of_kind(cpu_objects, "NetworkPolicy")
    deny = next(
        o for o in cpu_objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("default-deny")
    )
    assert "ingress" not in deny["spec"] and deny["spec"]["policyTypes"] == ["Ingress"]
    gateway_selector = policies["gateway"]["spec"]["podSelector"]["matchLabels"]
    assert policies["gateway"]["spec"]["ingress"] == [{"ports": [{"port": 8000, "protocol": "TCP"}]}]
    for stage in set(SERVICES.values()) - {"gateway"}:
        grpc_rule = policies[stage]["spec"]["ingress"][0]
        assert grpc_rule["from"] == [{"podSelector": {"matchLabels": gateway_selector}}]


def test_scale_out_objects(cpu_objects: list[dict]) -> None:
    services = of_kind(cpu_objects, "Service")
    for stateful_or_balanced in ("detection", "tracking", "reid"):
        assert services[stateful_or_balanced]["spec"]["clusterIP"] == "None"  # every pod in DNS
    hpas = of_kind(cpu_objects, "HorizontalPodAutoscaler")
    assert set(hpas) == GPU_STAGES
    assert "replicas" not in of_kind(cpu_objects, "Deployment")["detection"]["spec"]  # the HPA owns it
    assert set(of_kind(cpu_objects, "PodDisruptionBudget")) >= set(SERVICES.values())
    config = next(o for o in cpu_objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-config"))
    assert config["data"]["DETECTION_SVC_ADDR"] == "dns:///spoton-detection:50051"
    assert config["data"]["TRACKING_SVC_ADDR"] == "dns:///spoton-tracking:50052"


def test_external_database_and_redis_drop_the_statefulsets() -> None:
    values = {"database": {"url": "postgresql://u:p@managed:5432/db"}, "redis": {"url": "redis://cache:6379/0"}}
    objs = helmchart.objects(helmchart.render(values))
    helmchart.validate(objs)
    assert not [o for o in objs if o["kind"] == "StatefulSet"]
    secret = next(o for o in objs if o["kind"] == "Secret")
    assert secret["stringData"]["DATABASE_URL"] == values["database"]["url"]
    assert secret["stringData"]["REDIS_URL"] == values["redis"]["url"]


def config_map(objs: list[dict]) -> dict[str, str]:
    return next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-config"))["data"]


def test_person_search_retention_follows_the_history_retention(cpu_objects: list[dict]) -> None:
    """Person search (biometric) never outlives the history: one value sets both, in the chart and in Compose."""
    assert config_map(cpu_objects)["REID_SEARCH_RETENTION_DAYS"] == config_map(cpu_objects)["HISTORY_RETENTION_DAYS"]
    week = config_map(helmchart.objects(helmchart.render({"config": {"HISTORY_RETENTION_DAYS": "7"}})))
    assert week["HISTORY_RETENTION_DAYS"] == week["REID_SEARCH_RETENTION_DAYS"] == "7"
    own = config_map(helmchart.objects(helmchart.render({"config": {"REID_SEARCH_RETENTION_DAYS": "2"}})))
    assert own["REID_SEARCH_RETENTION_DAYS"] == "2"  # given explicitly: kept, and listed once
    env = yaml.safe_load((REPO / "compose.yaml").read_text())["x-service"]["environment"]
    assert env["REID_SEARCH_RETENTION_DAYS"] == env["HISTORY_RETENTION_DAYS"] == "${HISTORY_RETENTION_DAYS:-0}"


# ---- images --------------------------------------------------------------------------------------------------------
def compose_defaults(value: str) -> str:
    """A Compose value with every ``${VAR:-default}`` replaced by its default (the variable unset)."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def compose_builds() -> dict[str, dict]:
    """Service name -> build args, for the CPU Compose file with the GPU override applied."""
    cpu = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    gpu = yaml.safe_load((REPO / "compose.gpu.yaml").read_text())["services"]
    return {
        name: {
            k: compose_defaults(v)
            for k, v in {**cpu[name]["build"]["args"], **(gpu.get(name, {}).get("build", {}).get("args", {}))}.items()
        }
        for name in cpu
        if "build" in cpu[name]
    }


def images_script():  # type: ignore[no-untyped-def]
    """bench/images.py (what `make images` runs), imported as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_images", REPO / "bench" / "images.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_variable(name: str) -> str:
    """The default of a ``NAME ?= value`` / ``NAME := value`` line of the Makefile."""
    m = re.search(rf"^{name}\s*[?:]=\s*(.*)$", (REPO / "Makefile").read_text(), re.M)
    assert m, f"{name} not in the Makefile"
    return m.group(1).strip()


@pytest.mark.parametrize("profile", ["cpu_objects", "gpu_objects"])
def test_make_images_tags_what_the_chart_deploys(profile: str, request: pytest.FixtureRequest) -> None:
    """`make images` (bench/images.py) tags REGISTRY/<name>:TAG[-cuda]; the chart renders exactly those names from
    the same defaults, and a custom registry prefix and tag move both the same way."""
    script = images_script()
    values = helmchart.load_values(helmchart.CHART / "values.yaml")["image"]
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert make_variable("REGISTRY") == values["registry"] == "spoton"
    assert values["tag"] == version == script.version()
    assert "pyproject.toml" in make_variable("IMAGE_TAG")
    assert values["gpuTagSuffix"] == "-cuda"
    torch = "cuda" if profile == "gpu_objects" else make_variable("IMAGE_TORCH")
    assert torch in ("pypi", "cuda")
    built = {
        name: script.image_name(values["registry"], name, values["tag"], torch if needs else "none")
        for name, _extra, needs, _port in script.SERVICES.values()
    }
    rendered = {
        name: dep["spec"]["template"]["spec"]["containers"][0]["image"]
        for name, dep in of_kind(request.getfixturevalue(profile), "Deployment").items()
    }
    assert rendered == built
    if profile == "cpu_objects":
        custom = {"image": {"registry": "registry.example:5000/team", "tag": "9.9"}}
        objs = helmchart.objects(helmchart.render(custom))
        images = {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in objs if d["kind"] == "Deployment"}
        assert images == {script.image_name("registry.example:5000/team", n, "9.9", "pypi") for n in rendered}


def test_images_script_builds_what_compose_builds() -> None:
    """bench/images.py's service table (package, extra, whether it needs PyTorch) is Compose's, and the image
    names Compose gives are the same REGISTRY/<name>:TAG."""
    script = images_script()
    builds = compose_builds()
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    assert {name for name, *_ in script.SERVICES.values()} == set(builds) == set(SERVICES.values())
    for package, (name, extra, needs_torch, _port) in script.SERVICES.items():
        assert SERVICES[package] == name
        assert builds[name]["SERVICE"] == package and builds[name]["EXTRA"] == extra
        assert (builds[name]["TORCH"] != "none") == needs_torch
        assert compose_defaults(compose[name]["image"]) == script.image_name("spoton", name, "0.1.0", "pypi")


def test_dockerfile_torch_matches_make_install() -> None:
    """The Dockerfile installs the torch/torchvision pins of `make install` for every TORCH but none, knows every
    value the Makefile, Compose and the chart's comments use, and values.yaml documents TORCH (not VARIANT)."""
    dockerfile = (REPO / "Dockerfile").read_text()
    pins = make_variable("TORCH")
    assert pins.startswith("torch==") and "torchvision==" in pins
    torch_step = dockerfile[dockerfile.index('case "$TORCH" in') :]
    torch_step = torch_step[: torch_step.index("esac")]
    for variant in ("cpu", "pypi|cuda"):
        line = next(x for x in torch_step.splitlines() if x.strip().startswith(f"{variant})"))
        assert line.rstrip(" ;\\").endswith(pins), line
    assert re.search(r"^\s*none\) ;;", torch_step, re.M)
    assert set(compose_builds()[n]["TORCH"] for n in ("tracking",)) <= {"cpu", "pypi"}
    assert "--torch $(IMAGE_TORCH)" in (REPO / "Makefile").read_text()
    values_text = (helmchart.CHART / "values.yaml").read_text()
    assert "VARIANT" not in values_text and "--build-arg TORCH=cuda" in values_text
    assert "ARG TORCH=none" in dockerfile and "VARIANT" not in dockerfile


@pytest.mark.parametrize("package", sorted(SERVICES))
def test_dockerfile_builds_the_service_it_is_given(package: str) -> None:
    """The one Dockerfile, with the build arguments Compose gives this service, copies existing sources, installs
    an existing extra, runs as non-root and starts ``python -m <package>.server``."""
    args = compose_builds()[SERVICES[package]]
    assert args["SERVICE"] == package and (REPO / package / "server.py").exists()
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    assert args["EXTRA"] in extras
    assert args["TORCH"] == (
        "cuda" if SERVICES[package] in GPU_STAGES else "cpu" if package == "tracking_svc" else "none"
    )
    df = DockerfileParser(path=str(REPO / "Dockerfile"))
    steps = [(st["instruction"], st["value"].replace("${SERVICE}", package)) for st in df.structure]
    froms = [i for i, (ins, _) in enumerate(steps) if ins == "FROM"]
    assert len(froms) >= 2, "multi-stage"
    final = steps[froms[-1] :]
    user = [v for i, v in final if i == "USER"]
    assert user and user[-1] not in ("root", "0")
    entry = json.loads(next(v for i, v in final if i == "ENTRYPOINT"))
    env = " ".join(v for i, v in final if i == "ENV")
    assert f"SPOTON_SERVICE={package}" in env and entry[-1] == 'exec python -m "$SPOTON_SERVICE.server"'
    assert 'pip install ".[${EXTRA}]"' in df.content
    for ins, value in steps:
        if ins == "COPY" and "--from=" not in value:
            *sources, _dest = value.replace("--chown=10001:10001", "").split()
            for src in sources:
                assert (REPO / src).exists(), f"COPY {src} does not exist"
    config = (REPO / package / "config.py").read_text()
    for port in re.findall(r"Field\((\d+), validation_alias=", config):
        assert port in next(v for i, v in final if i == "EXPOSE").split()
    assert "onnxruntime-gpu" in df.content


def test_dockerignore_keeps_weights_and_venv_out() -> None:
    lines = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".git", "build", "weights/*"} <= set(lines)


@pytest.mark.parametrize("package", ["mapping_svc", "analytics_svc", "gateway"])
def test_cpu_services_import_no_torch(package: str) -> None:
    """Their images carry no torch: importing the service must not need it."""
    code = f"import sys, {package}.server; print('torch' in sys.modules or 'ultralytics' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_compose_wires_every_service() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    gpu = yaml.safe_load((REPO / "compose.gpu.yaml").read_text())
    assert set(compose_builds()) == set(SERVICES.values())
    for name in GPU_STAGES:
        assert gpu["services"][name]["build"]["args"]["TORCH"] == "cuda"
        assert gpu["services"][name]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert all("dockerfile" not in s["build"] for s in compose["services"].values() if "build" in s)
    for env_file in (".env.cpu", ".env.gpu"):
        text = (REPO / env_file).read_text()
        assert f"SPOTON_ENV_FILE={env_file}" in text and "TARGET_FPS=" in text


def test_health_probe_command(stack) -> None:  # type: ignore[no-untyped-def]
    from spoton.bootstrap.probe import main

    assert main([stack.addr("mapping")]) == 0
    assert main(["127.0.0.1:9"]) == 1
