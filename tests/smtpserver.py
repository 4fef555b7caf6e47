"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), recording what it accepts.

``hold()`` makes the server stall after ``RCPT TO`` (before ``DATA``) until
``release()``: a sender caught there is mid-send and can be killed; the
server then drops the unfinished transaction, as a real one would.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: Message

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class Recorder:
    """The aiosmtpd handler: stores accepted messages; can stall senders."""

    messages: list[Received] = field(default_factory=list)
    rcpt_seen: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    refuse_with: str | None = None  #: e.g. "550 no such user": refuse every recipient
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.refuse_with:
            return self.refuse_with
        envelope.rcpt_tos.append(address)
        self.rcpt_seen.set()
        while self.held.is_set():
            await asyncio.sleep(0.02)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.content
        data = content if isinstance(content, bytes) else content.encode()
        with self.lock:
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(data))
            )
        return "250 Message accepted for delivery"


class SMTPTestServer:
    """``with SMTPTestServer() as smtp: ... smtp.port, smtp.messages``"""

    def __init__(self) -> None:
        self.recorder = Recorder()
        self.port = free_port()
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[Received]:
        with self.recorder.lock:
            return list(self.recorder.messages)

    def hold(self) -> None:
        self.recorder.rcpt_seen.clear()
        self.recorder.held.set()

    def release(self) -> None:
        self.recorder.held.clear()

    def wait_for_rcpt(self, timeout: float = 30.0) -> bool:
        return self.recorder.rcpt_seen.wait(timeout)

    def wait_for_messages(self, n: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages) < n:
            time.sleep(0.02)
        return self.messages

    def __enter__(self) -> SMTPTestServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.controller.stop()
