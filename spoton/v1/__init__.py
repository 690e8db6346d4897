"""Generated protobuf and gRPC stubs for ``package spoton.v1`` (``python -m spoton.protogen``; do not edit)."""
