"""Generate the one Python copy of the protobuf/gRPC stubs: ``python -m spoton.protogen``.

The stubs land in ``spoton/v1/`` (import path ``spoton.v1.*_pb2``), which matches the proto package
``spoton.v1`` so the generated cross-file imports resolve without path hacks.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / "spoton" / "v1").glob("*.proto"))


def generate(out_dir: Path) -> None:
    """Run protoc on every proto into ``out_dir`` (which receives ``spoton/v1/...``)."""
    well_known = str(resources.files("grpc_tools") / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(p.relative_to(PROTO_ROOT)) for p in proto_files()],
    ]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT, help="output root (default: the repository)")
    generate(parser.parse_args().out)
    print(f"generated {len(proto_files())} protos into {ROOT / 'spoton' / 'v1'}", file=sys.stderr)


if __name__ == "__main__":
    main()
