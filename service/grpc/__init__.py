"""gRPC API: the ``reggaeton.v1`` proto, its generated code and the grpcio server."""
