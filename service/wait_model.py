"""``python -m service.wait_model``: wait until the model store holds the version to serve.

The serving pods' init container. In a cluster the store is bootstrapped once, by the chart's
bootstrap Job (not by every serving pod, which trained once per replica and per scale-up), so a
pod that starts first waits here for that version instead of crash-looping. It reads the store
read-only and exits 0 as soon as ``MODEL_TAG`` (or, when unset, the promoted version) can be
loaded, 1 after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from reggaeton.registry import Registry
from service.config import ServiceConfig

log = logging.getLogger("service.wait_model")


def serving_tag(home: Path, model_tag: str | None) -> str | None:
    """The tag the service would load now, or None while the store cannot provide one.

    Any failure counts as "not yet": an empty claim has no ``models/`` folder (and is mounted
    read-only here), a half-written version fails to load, a pinned tag may not be saved yet.
    """
    try:
        return Registry(home).serving_version(model_tag).tag
    except Exception as exc:  # noqa: BLE001 - keep waiting; the last reason is logged on timeout
        log.debug("not servable yet: %s", exc)
        return None


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: 0 once the version is in the store, 1 on timeout."""
    parser = argparse.ArgumentParser(
        prog="python -m service.wait_model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds (default 1800)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between checks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = ServiceConfig.from_env()  # the service's own reading of MODEL_TAG, BENTOML_HOME
    home, model_tag = config.home, config.model_tag
    deadline = time.monotonic() + args.timeout
    announced = False
    while True:
        tag = serving_tag(home, model_tag)
        if tag:
            log.info("model store %s serves %s", home, tag)
            return 0
        if time.monotonic() >= deadline:
            log.error(
                "no servable version in %s after %.0f s (MODEL_TAG=%s): is the bootstrap Job done?",
                home,
                args.timeout,
                model_tag or "",
            )
            return 1
        if not announced:
            log.info(
                "waiting for %s in %s (the bootstrap Job trains the first version)",
                model_tag or "a promoted version",
                home,
            )
            announced = True
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
