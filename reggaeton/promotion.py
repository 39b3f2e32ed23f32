"""The promotion record: which model version serves, with the history of every decision.

One JSON document ``{"current": tag | null, "history": [...]}`` next to the model store. Every
change takes an exclusive ``flock`` and replaces the file atomically (``os.replace``), so
readers (the service's watcher, the chart's jobs) never see a partial record and concurrent
writers never lose an entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from reggaeton.timeutil import now_iso


class PromotionError(RuntimeError):
    """A promotion or rollback request cannot be carried out."""


class PromotionRecord:
    """Which version serves, with an append-only history of every decision.

    The record is one JSON document ``{"current": tag | null, "history": [...]}``. Every
    change takes an exclusive ``flock`` and replaces the file atomically (``os.replace``),
    so readers never see a partial record and concurrent writers never lose an entry.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any]:
        """The whole record (``current`` and ``history``)."""
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"current": None, "history": []}

    def current(self) -> str | None:
        """Tag of the promoted version, or None."""
        return self.read().get("current")

    def history(self) -> list[dict[str, Any]]:
        """Every decision, oldest first."""
        return list(self.read().get("history", []))

    def promote(
        self,
        tag: str,
        reason: str,
        *,
        forced: bool = False,
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Make ``tag`` the serving version and record why."""
        with self._locked() as record:
            entry = self._entry("promote", tag, reason, record.get("current"), forced, details)
            record["current"] = tag
            record["history"].append(entry)
        return entry

    def reject(
        self, tag: str, reason: str, details: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Record that ``tag`` was saved but not promoted, and why."""
        with self._locked() as record:
            entry = self._entry("reject", tag, reason, record.get("current"), False, details)
            record["history"].append(entry)
        return entry

    def rollback(self, reason: str = "manual rollback") -> dict[str, Any]:
        """Return to the version that served before the current one.

        Raises:
            PromotionError: when there is no earlier promoted version.
        """
        with self._locked() as record:
            current = record.get("current")
            previous = _previous_promoted(record["history"], current)
            if previous is None:
                raise PromotionError("no earlier promoted version to roll back to")
            entry = self._entry("rollback", previous, reason, current, False, None)
            record["current"] = previous
            record["history"].append(entry)
        return entry

    @staticmethod
    def _entry(
        action: str,
        tag: str,
        reason: str,
        previous: str | None,
        forced: bool,
        details: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        return {
            "action": action,
            "tag": tag,
            "previous": previous,
            "reason": reason,
            "forced": forced,
            "at": now_iso("seconds"),
            "details": dict(details or {}),
        }

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            record = self.read()
            record.setdefault("history", [])
            yield record
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".promotion-")
            with os.fdopen(fd, "w") as fh:
                json.dump(record, fh, indent=2, default=str)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)


def _previous_promoted(history: list[dict[str, Any]], current: str | None) -> str | None:
    """The tag that served just before ``current``.

    Promotions push onto a stack and rollbacks pop it, so repeated rollbacks walk back
    through the promotion history.
    """
    stack: list[str] = []
    for entry in history:
        if entry["action"] == "promote":
            stack.append(entry["tag"])
        elif entry["action"] == "rollback" and stack:
            stack.pop()
    if stack and stack[-1] == current:
        stack.pop()
    return stack[-1] if stack else None
