"""The TWS API socket framing: length-prefixed messages of NUL-terminated text fields.

Kept free of any I/O so that the parser can be fed arbitrary byte chunks (TCP gives no message
boundaries) and tested on its own. Numbers are formatted the way TWS formats them, because some
clients are strict: ibapi <163 does `int(size)`, so integral sizes must never carry a ".0".
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence

# The sentinels TWS uses for "unset" numbers (ib_async.util.UNSET_DOUBLE / UNSET_INTEGER).
UNSET_DOUBLE = 1.7976931348623157e308
UNSET_INTEGER = 2**31 - 1
UNSET_DOUBLE_TEXT = "1.7976931348623157E308"

#: A client message bigger than this is a protocol violation, not data (bounded memory).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

API_PREFIX = b"API\0"

Field = str | int | float | bool | None


class ProtocolError(Exception):
    """The peer broke the framing or the handshake: the connection cannot continue."""


def fmt_float(value: float) -> str:
    """A price or amount as TWS writes it: shortest round-trip text, unset as TWS' sentinel."""
    if value == UNSET_DOUBLE:
        return UNSET_DOUBLE_TEXT
    if math.isinf(value):
        return "Infinite"
    if math.isnan(value):
        return ""
    return repr(float(value))


def fmt_size(value: float) -> str:
    """A size/volume: an integer when integral (old clients parse sizes with int())."""
    if math.isnan(value):
        return ""
    if value == int(value) and abs(value) < 1e18:
        return str(int(value))
    return repr(float(value))


def fmt_field(value: Field) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return fmt_float(value)
    return value


def encode_fields(fields: Iterable[Field]) -> bytes:
    """One framed message: every field NUL-terminated, the whole prefixed by its length."""
    payload = "".join(fmt_field(f) + "\0" for f in fields).encode("utf-8")
    return struct.pack(">I", len(payload)) + payload


def encode_raw(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def parse_version_range(payload: bytes) -> tuple[int, int, str]:
    """The client's `v{min}..{max}[ options]` announcement → (min, max, options)."""
    text = payload.decode("ascii", errors="replace").strip("\0").strip()
    head, _, options = text.partition(" ")
    if not head.startswith("v"):
        raise ProtocolError(f"handshake: expected 'v<min>..<max>', got {text[:40]!r}")
    lo_text, sep, hi_text = head[1:].partition("..")
    try:
        lo = int(lo_text)
        hi = int(hi_text) if sep else lo
    except ValueError as exc:
        raise ProtocolError(f"handshake: bad version range {head[:40]!r}") from exc
    if lo > hi:
        raise ProtocolError(f"handshake: empty version range {head!r}")
    return lo, hi, options


class FrameDecoder:
    """Splits a byte stream into messages. Feed it chunks; it returns complete messages.

    The first thing a client sends is `API\\0` followed by one framed version announcement; after
    that every frame is a list of NUL-terminated fields.
    """

    def __init__(self, *, expect_prefix: bool = True) -> None:
        self._buf = bytearray()
        self._need_prefix = expect_prefix

    def feed(self, data: bytes) -> list[bytes]:
        """Return the payloads of all complete frames now available."""
        self._buf += data
        out: list[bytes] = []
        if self._need_prefix:
            if len(self._buf) < len(API_PREFIX):
                if not API_PREFIX.startswith(bytes(self._buf)):
                    raise ProtocolError("handshake: client did not start with 'API\\0'")
                return out
            if not self._buf.startswith(API_PREFIX):
                raise ProtocolError("handshake: client did not start with 'API\\0'")
            del self._buf[: len(API_PREFIX)]
            self._need_prefix = False
        while len(self._buf) >= 4:
            (size,) = struct.unpack_from(">I", self._buf, 0)
            if size > MAX_MESSAGE_BYTES:
                raise ProtocolError(
                    f"message of {size} bytes exceeds the {MAX_MESSAGE_BYTES} limit")
            if len(self._buf) < 4 + size:
                break
            out.append(bytes(self._buf[4 : 4 + size]))
            del self._buf[: 4 + size]
        return out

    @property
    def buffered(self) -> int:
        return len(self._buf)


def split_fields(payload: bytes) -> list[str]:
    """A message payload → its text fields (the trailing empty element dropped, like clients)."""
    fields = payload.decode("utf-8", errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


class FieldReader:
    """Reads typed fields off a request in order; running out raises ValueError (malformed)."""

    def __init__(self, fields: Sequence[str], start: int = 0) -> None:
        self._fields = fields
        self.pos = start

    def remaining(self) -> int:
        return len(self._fields) - self.pos

    def text(self) -> str:
        if self.pos >= len(self._fields):
            raise ValueError(f"message truncated at field {self.pos}")
        value = self._fields[self.pos]
        self.pos += 1
        return value

    def text_or(self, default: str) -> str:
        """A trailing optional field: absent means `default` (older clients send fewer)."""
        if self.pos >= len(self._fields):
            return default
        return self.text()

    def integer(self, default: int = 0) -> int:
        text = self.text().strip()
        if not text:
            return default
        try:
            return int(text)
        except ValueError:
            return int(float(text))

    def number(self, default: float = UNSET_DOUBLE) -> float:
        text = self.text().strip()
        if not text:
            return default
        if text == "Infinite":
            return math.inf
        return float(text)

    def flag(self) -> bool:
        text = self.text().strip()
        if not text:
            return False
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        return int(float(text)) != 0

    def skip(self, count: int) -> None:
        if self.pos + count > len(self._fields):
            raise ValueError(f"message truncated: wanted {count} more fields at {self.pos}")
        self.pos += count
