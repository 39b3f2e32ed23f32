"""Write the servable file of versions saved without one: ``python -m training.export [TAG ...]``.

The service loads a version's ``servable.npz`` (:mod:`reggaeton.servable`), never its pickle.
Versions saved before that have only ``pipeline.joblib``. This offline step, run by whoever
trusts the model store (it unpickles each pipeline once), compiles each one, checks it against
``predict_proba`` and writes the file next to it; the service then serves the version. Without
tags it exports every version that lacks the file. Exit 1 if any version could not be exported.
"""

from __future__ import annotations

import argparse
import os
import sys

from reggaeton.registry import ModelLoadError, Registry, home_from_env
from reggaeton.servable import SERVABLE_FILE, NotServable, export


def main(argv: list[str] | None = None) -> int:
    """Export the given versions (or every one without a servable file); print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tags", nargs="*", help="versions to export (default: all lacking one)")
    args = parser.parse_args(argv)
    registry = Registry(home_from_env(os.environ))
    try:
        versions = [registry.get(tag) for tag in args.tags]
    except ModelLoadError as exc:
        print(exc, file=sys.stderr)
        return 1
    if not args.tags:
        versions = [v for v in registry.list() if not v.metadata.get("servable_sha256")]
    failed = 0
    for version in versions:
        try:
            registry.add_servable(version, export(registry.load_pipeline(version)))
        except (ModelLoadError, NotServable) as exc:
            print(f"{version.tag}: not exported: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{version.tag}: wrote {SERVABLE_FILE}")
    if not versions:
        print(f"every version in {registry.home} has its {SERVABLE_FILE}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
