"""Regenerate the committed gRPC code: ``python -m service.grpc.generate`` (needs grpcio-tools).

protoc writes ``from reggaeton.v1 import reggaeton_pb2``, which would clash with the project's
``reggaeton`` package, so the generated modules are placed in ``service/grpc/`` and that import
is rewritten to ``from service.grpc import reggaeton_pb2``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO = "reggaeton/v1/reggaeton.proto"


def main() -> None:
    """Run protoc on the proto and install the fixed-up modules next to this file."""
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        code = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{HERE}",
                f"--python_out={tmp}",
                f"--grpc_python_out={tmp}",
                str(HERE / PROTO),
            ]
        )
        if code != 0:
            raise SystemExit(f"protoc failed with exit code {code}")
        out = Path(tmp) / "reggaeton" / "v1"
        for name in ("reggaeton_pb2.py", "reggaeton_pb2_grpc.py"):
            text = (
                (out / name)
                .read_text()
                .replace(
                    "from reggaeton.v1 import reggaeton_pb2",
                    "from service.grpc import reggaeton_pb2",
                )
            )
            (HERE / name).write_text(text)
    shutil.rmtree(HERE / "__pycache__", ignore_errors=True)
    print(f"generated {HERE}/reggaeton_pb2*.py from {PROTO}")


if __name__ == "__main__":
    main()
