"""CLI: ``python -m service.score --input songs.parquet --output scored.parquet``.

Sharded (a Kubernetes Indexed Job): ``--shard-index`` defaults to ``JOB_COMPLETION_INDEX`` and
``--shard-count`` to ``SCORE_SHARD_COUNT``; with more than one shard (or ``--output`` naming a
directory) each index writes ``<output>/part-<index:05d>.<format>`` and
``<output>/rejects-<index:05d>.csv``. Listing convention: the parts are the files matching
``part-*.<format>`` in that directory; read in name order they are the input in row order (each
carries the input ``row`` number). A part appears only once complete (written then renamed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from pydantic import Field

from reggaeton.settings import EnvSettings, load_env


class ScoreSettings(EnvSettings):
    """The options a scoring Job's pod passes in its environment (flags override them).

    Attributes:
        shard_index: This pod's shard (``JOB_COMPLETION_INDEX``, set by an Indexed Job).
        shard_count: Number of shards (``SCORE_SHARD_COUNT``).
        chunk_rows: Rows read and scored at a time (``SCORE_CHUNK_ROWS``): memory stays flat.
        log_predictions: Also write predictions to the prediction log
            (``SCORE_LOG_PREDICTIONS``).
    """

    shard_index: int = Field(0, validation_alias="JOB_COMPLETION_INDEX", ge=0)
    shard_count: int = Field(1, validation_alias="SCORE_SHARD_COUNT", ge=1)
    chunk_rows: int = Field(131_072, validation_alias="SCORE_CHUNK_ROWS", ge=1)
    log_predictions: bool = Field(False, validation_alias="SCORE_LOG_PREDICTIONS")


def build_parser(env: ScoreSettings) -> argparse.ArgumentParser:
    """The command-line options, defaulting to the environment's ``env`` (as in a Job's pod)."""
    parser = argparse.ArgumentParser(
        prog="python -m service.score",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", required=True, type=Path, help=".csv or .parquet catalogue")
    parser.add_argument(
        "--output",
        required=True,
        help="output file (.csv or .parquet), or a directory for parts (an "
        "existing one, or a path ending in /)",
    )
    parser.add_argument(
        "--format",
        choices=("parquet", "csv"),
        default="parquet",
        help="format of the parts when --output is a directory",
    )
    parser.add_argument("--rejects", type=Path, help="reject file (default: beside the output)")
    parser.add_argument("--shard-index", type=int, default=env.shard_index)
    parser.add_argument("--shard-count", type=int, default=env.shard_count)
    parser.add_argument("--chunk-rows", type=int, default=env.chunk_rows)
    parser.add_argument(
        "--model-tag", help="version to score with (default: MODEL_TAG, then the promoted version)"
    )
    parser.add_argument(
        "--log-predictions",
        action="store_true",
        default=env.log_predictions,
        help="also write predictions to PREDICTION_STORE_URI (source batch-job)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Score the shard, print a JSON summary on stdout; exit 0 (rejects do not fail
    the run: they are in the reject file and counted in the summary)."""
    args = build_parser(load_env(ScoreSettings, os.environ)).parse_args(argv)
    from reggaeton.registry import Registry
    from service.config import ServiceConfig
    from service.inference import load_predictor
    from service.score.run import part_paths, score_file

    config = ServiceConfig.from_env()
    predictor = load_predictor(Registry(config.home), args.model_tag or config.model_tag)
    output = Path(args.output)  # a trailing "/" (lost by Path) asks for parts
    sharded = args.shard_count > 1 or args.output.endswith("/") or output.is_dir()
    out, rejects = part_paths(output, args.format, args.shard_index, sharded)
    store = None
    if args.log_predictions:
        from reggaeton.records.factory import open_store

        store = open_store(config.store_uri, config.log_retention_days)
    try:
        summary = score_file(
            predictor,
            args.input,
            out,
            args.rejects or rejects,
            index=args.shard_index,
            count=args.shard_count,
            chunk_rows=args.chunk_rows,
            store=store,
            progress=None if args.no_progress else sys.stderr,
        )
    finally:
        if store is not None:
            store.close()
    print(
        json.dumps(
            {
                **asdict(summary),
                "model_version": predictor.tag,
                "shard": [args.shard_index, args.shard_count],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
