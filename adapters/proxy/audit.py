"""The audit log: one JSON line per verdict.

Each line has the action, the categories that fired, the scores, the policy, the caller's key
name, the latency and a SHA-256 of the text; the raw text only when ``audit_log_text`` is on.
Request headers (and so keys) are never written. Personal data and secrets found in a text are
counted by type, and masked (``<EMAIL>``) in the text and its hash: their values never reach
the log.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from typing import Any, TextIO

from guardrail.errors import ConfigError
from guardrail.redaction import mask
from guardrail.types import Verdict

from .scrub import Scrubber

__all__ = ["AuditLog"]


class AuditLog:
    """Writes audit lines to a file, standard error, or nowhere.

    Args:
        target: a file path, ``-`` for standard error, or None to disable.
        include_text: also write the raw text.
        scrubber: masks secrets (the upstream key) in every line.
    """

    def __init__(
        self, target: str | None, *, include_text: bool = False, scrubber: Scrubber | None = None
    ) -> None:
        self.target = target
        self.include_text = include_text
        self.scrubber = scrubber or Scrubber(())
        self._lock = threading.Lock()
        self._stream: TextIO | None = None

    def open(self) -> None:
        """Open the target (the app's lifespan calls this at startup).

        Raises:
            ConfigError: the file cannot be opened for appending.
        """
        if self.target is None or self._stream is not None:
            return
        if self.target == "-":
            self._stream = sys.stderr
            return
        try:
            self._stream = open(self.target, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        except OSError as e:
            raise ConfigError(f"audit_log: cannot open {self.target}: {e}") from e

    def write(
        self,
        verdict: Verdict,
        text: str,
        *,
        route: str,
        stage: str,
        request_id: str,
        latency_ms: float,
        key: str = "anonymous",
    ) -> None:
        """Write one line for one verdict (``key``: the caller's key name, never the key)."""
        if self.target is None:
            return
        if self._stream is None:
            self.open()
        assert self._stream is not None
        record = self.record(verdict, text, route, stage, request_id, latency_ms, key)
        line = self.scrubber.text(_dumps(record)) + "\n"
        # One write per line under a lock, so lines from concurrent requests never interleave.
        with self._lock:
            self._stream.write(line)

    def record(
        self,
        verdict: Verdict,
        text: str,
        route: str,
        stage: str,
        request_id: str,
        latency_ms: float,
        key: str = "anonymous",
    ) -> dict[str, Any]:
        """The JSON object of one audit line."""
        if verdict.entities:
            text = mask(text, verdict.entities)
        record: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "request_id": request_id,
            "key": key,
            "route": route,
            "stage": stage,
            "role": verdict.role.value,
            "action": verdict.action.value,
            "categories": [c.model_dump(mode="json") for c in verdict.categories],
            "scores": {"unsafe": verdict.scores.unsafe, **verdict.scores.categories},
            "decided_by": list(verdict.decided_by),
            "language": verdict.language,
            "classifier": verdict.classifier,
            "policy": verdict.policy,
            "policy_hash": verdict.policy_hash,
            "latency_ms": round(latency_ms, 3),
            "text_sha256": hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
            "text_chars": len(text),
        }
        if verdict.notes:
            record["notes"] = list(verdict.notes)
        if verdict.entities:
            counts: dict[str, int] = {}
            for entity in verdict.entities:
                counts[entity.type] = counts.get(entity.type, 0) + 1
            record["entities"] = counts
        if self.include_text:
            record["text"] = text
        return record

    def close(self) -> None:
        """Close the file (the app's lifespan calls this at shutdown)."""
        stream, self._stream = self._stream, None
        if stream is not None and stream is not sys.stderr:
            stream.close()


def _dumps(record: dict[str, Any]) -> str:
    """One JSON line; a text with lone surrogates (which UTF-8 cannot carry) as escapes."""
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode()
    except UnicodeEncodeError:
        return json.dumps(record)
    return line
