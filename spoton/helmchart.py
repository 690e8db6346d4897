"""Render the Helm chart offline and write ``k8s/manifests/``: ``python -m spoton.helmchart`` (``make manifests``).

Helm itself renders (``helm-python-sdk`` carries Helm's Go SDK as a library; no binary, no cluster), and every
object is checked against the Kubernetes OpenAPI schemas of ``KUBE_VERSION`` with ``kubernetes-validate``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "k8s" / "helm" / "spoton"
MANIFESTS = REPO / "k8s" / "manifests"
KUBE_VERSION = "1.32.0"
RELEASE = "spoton"


def render(values: dict | None = None, release: str = RELEASE, namespace: str = "default") -> dict[str, str]:
    """Template path -> rendered YAML text, with ``values`` merged over the chart's ``values.yaml``."""
    import helm_python

    with helm_python.Chart.load(CHART) as chart:
        return chart.render(values=values or {}, name=release, namespace=namespace, is_install=True)


def objects(rendered: dict[str, str]) -> list[dict]:
    """Every Kubernetes object in a render (NOTES.txt and empty documents left out)."""
    out = []
    for path in sorted(rendered):
        if path.endswith(".yaml"):
            out.extend(doc for doc in yaml.safe_load_all(rendered[path]) if doc)
    return out


def load_values(*files: Path) -> dict:
    """Values files merged left to right (later ones win, maps merge), as ``helm -f a -f b`` does."""

    def merge(base: dict, over: dict) -> dict:
        result = dict(base)
        for k, v in over.items():
            result[k] = merge(result[k], v) if isinstance(v, dict) and isinstance(result.get(k), dict) else v
        return result

    values: dict = {}
    for f in files:
        values = merge(values, yaml.safe_load(Path(f).read_text()) or {})
    return values


# Custom resources the chart may render (cert-manager's Certificate): Kubernetes' own schemas do not cover them.
CUSTOM_GROUPS = ("cert-manager.io/",)
# The plain manifests name a Secret the operator creates (README): a render would otherwise commit generated keys.
PLAIN_VALUES = {"existingSecret": f"{RELEASE}-secrets"}


def validate(objs: list[dict], kube_version: str = KUBE_VERSION) -> None:
    """Raise ``kubernetes_validate.ValidationError`` for the first object its schema rejects (custom resources
    of ``CUSTOM_GROUPS`` are left to their operators' admission checks)."""
    import kubernetes_validate

    for obj in objs:
        if not str(obj.get("apiVersion", "")).startswith(CUSTOM_GROUPS):
            kubernetes_validate.validate(obj, kube_version, strict=True)


def manifest_text(rendered: dict[str, str]) -> str:
    docs = objects(rendered)
    header = (
        "# Rendered from k8s/helm/spoton with its default values (CPU profile) and existingSecret=spoton-secrets by\n"
        "# `make manifests`. Do not edit. Create the Secret first (k8s/README.md):\n"
        "#   kubectl create secret generic spoton-secrets --from-literal=POSTGRES_PASSWORD=... \\\n"
        "#     --from-literal=DATABASE_URL=postgresql://spoton:...@spoton-timescaledb:5432/spoton \\\n"
        "#     --from-literal=REDIS_URL=redis://spoton-redis:6379/0 --from-literal=API_KEYS= \\\n"
        "#     --from-literal=SERVICE_API_KEY=$(openssl rand -hex 24) \\\n"
        "#     --from-literal=ADMIN_API_KEY=$(openssl rand -hex 24)\n"
    )
    return header + "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-f", "--values", type=Path, action="append", default=[], help="extra values files")
    parser.add_argument("--out", type=Path, default=MANIFESTS / "spoton.yaml")
    args = parser.parse_args()
    rendered = render(PLAIN_VALUES | load_values(*args.values))
    validate(objects(rendered))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(manifest_text(rendered))
    print(f"wrote {len(objects(rendered))} objects to {args.out} (valid against Kubernetes {KUBE_VERSION})")


if __name__ == "__main__":
    main()
