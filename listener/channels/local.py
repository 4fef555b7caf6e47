"""The local outbox: where the offline demo's replies go when their platform has no credentials.

With ``recovery.local_outbox: true`` a reply on a channel whose credentials are not set
(:func:`listener.channels.registry.credentials_set`) is appended, as one JSON line, to
``var/outbox.jsonl`` in the data folder (:meth:`listener.config.Settings.data_dir`) and
recorded as sent with the external id ``local:outbox.jsonl#<line>``.  Exactly once holds as
for any channel: :meth:`LocalOutboxChannel.find_existing` finds a line already written for
the message's idempotency key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

from listener.channels.base import OutboundMessage
from listener.clock import utcnow

PREFIX = "local:"
FILENAME = "outbox.jsonl"


def is_local(external_id: str | None) -> bool:
    """Whether a reply was delivered to the local outbox file (not to its platform)."""
    return bool(external_id) and str(external_id).startswith(PREFIX)


class LocalOutboxChannel:
    """Appends replies to a JSON-lines file instead of posting them."""

    name: ClassVar[str] = "local"

    def __init__(self, path: Path, channel: str) -> None:
        self.path = path
        self.channel = channel

    def _lines(self) -> list[str]:
        try:
            return self.path.read_text("utf-8").splitlines()
        except FileNotFoundError:
            return []

    def find_existing(self, message: OutboundMessage) -> str | None:
        for number, line in enumerate(self._lines(), start=1):
            try:
                key = json.loads(line).get("idempotency_key")
            except (ValueError, AttributeError):
                continue  # a hand-edited or torn line: not ours
            if key == message.idempotency_key:
                return f"{PREFIX}{FILENAME}#{number}"
        return None

    def send(self, message: OutboundMessage) -> str:
        existing = self.find_existing(message)
        if existing is not None:
            return existing
        record = {
            "idempotency_key": message.idempotency_key,
            "channel": message.channel,
            "case_id": getattr(message, "case_id", None),
            "in_reply_to": message.in_reply_to,
            "recipient": message.recipient,
            "target_url": getattr(message, "target_url", None),
            "subject": getattr(message, "subject", None),
            "text": message.text,
            "delivered_at": utcnow().isoformat(),
            "why": f"{self.channel}: no credentials set (recovery.local_outbox)",
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        number = len(self._lines()) + 1
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return f"{PREFIX}{FILENAME}#{number}"
