"""The real ``bentoml serve`` shared by the HTTP and gRPC test modules, on free ports.

The fault-injection modules (store outage, model switch) start their own server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from service_helpers import INPROCESS_BATCH_ROWS, INPROCESS_TOKEN, TOKEN, Server, serve

from service.config import ServiceConfig
from service.runtime import Runtime


@pytest.fixture(scope="session")
def server(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The service on the session's trained model, a fresh SQLite log, API_TOKEN set, and
    small limits (50 rows, 64 KiB, 5 requests per keep-alive connection) so the limit tests
    stay cheap."""
    work = tmp_path_factory.mktemp("service")
    uri = f"sqlite:///{work / 'predictions.db'}"
    with serve(
        trained_home,
        uri,
        work,
        API_TOKEN=TOKEN,
        MAX_BATCH_ROWS="50",
        MAX_BODY_BYTES="65536",
        HTTP_MAX_REQUESTS_PER_CONNECTION="5",
        HTTP_MAX_CONNECTION_AGE_S="0",
    ) as running:
        running.store_uri = uri  # type: ignore[attr-defined]
        yield running


@pytest.fixture(scope="session")
def runtime(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """One worker runtime in this process (one per process: its metrics are process-global),
    on the session's model, with a bearer token and a batch limit of
    :data:`INPROCESS_BATCH_ROWS`."""
    work = tmp_path_factory.mktemp("inprocess")
    config = ServiceConfig(
        home=trained_home,
        store_uri=f"sqlite:///{work / 'p.db'}",
        spill_dir=work / "spill",
        watch_interval=0,
        max_batch_rows=INPROCESS_BATCH_ROWS,
        api_token=INPROCESS_TOKEN,
    )
    started = Runtime(config, worker=None)
    started.start()
    yield started
    started.close()
