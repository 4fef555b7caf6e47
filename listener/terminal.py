"""Text that is safe to print on a terminal: post text is hostile input.

A post can carry control characters that a terminal obeys: C0 (``\\x1b``
starts an escape sequence), DEL, C1 (``\\x9b`` is a one-byte CSI on many
terminals) and bidirectional overrides that reorder what is shown.  The CLI
passes everything it prints about cases through :func:`safe` (human output:
the character is shown escaped, e.g. ``\\x9b``) or :func:`json_line` (JSON:
the same characters as ``\\u`` escapes, so the decoded value is unchanged).
"""

from __future__ import annotations

import json
import re
from typing import Any

#: C0 controls but tab and newline, DEL, C1 controls, bidi embeddings/overrides/isolates
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: what json.dumps(ensure_ascii=False) leaves raw (it escapes C0 itself)
_UNSAFE_IN_JSON = re.compile(r"[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escaped(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(value: Any) -> str:
    """``value`` as text with every terminal control character shown escaped."""
    return _UNSAFE.sub(lambda m: _escaped(m.group(0)), "" if value is None else str(value))


def json_line(obj: Any) -> str:
    """``obj`` as one JSON line (UTF-8 kept readable) with no raw control character in it."""
    text = json.dumps(obj, ensure_ascii=False, default=str)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
