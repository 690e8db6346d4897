"""Bootstrap shared by every service: settings, logging, the gRPC server runtime and client channels."""
