"""SpotOn shared package: domain types, service bootstrap and the generated gRPC stubs (``spoton.v1``)."""
