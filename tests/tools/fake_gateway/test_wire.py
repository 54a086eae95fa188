"""The framing layer on its own: chunked input, the handshake prefix, number formatting."""

from __future__ import annotations

import struct

import pytest

from tools.fake_gateway.wire import (
    UNSET_DOUBLE,
    FieldReader,
    FrameDecoder,
    ProtocolError,
    encode_fields,
    fmt_float,
    fmt_size,
    parse_version_range,
    split_fields,
)


def _frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def test_decoder_reassembles_frames_split_at_every_byte() -> None:
    stream = b"API\0" + _frame(b"v157..178") + _frame(b"71\x002\x005\x00\x00") + \
        _frame(b"49\x001\x00")
    decoder = FrameDecoder()
    payloads: list[bytes] = []
    for i in range(len(stream)):
        payloads += decoder.feed(stream[i:i + 1])
    assert payloads == [b"v157..178", b"71\x002\x005\x00\x00", b"49\x001\x00"]
    assert split_fields(payloads[1]) == ["71", "2", "5", ""]
    assert decoder.buffered == 0


def test_decoder_refuses_a_client_that_does_not_say_api() -> None:
    with pytest.raises(ProtocolError, match="API"):
        FrameDecoder().feed(b"GET / HTTP/1.1\r\n")


def test_decoder_refuses_oversized_messages() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        FrameDecoder(expect_prefix=False).feed(struct.pack(">I", 1 << 30) + b"x")


def test_version_range_parsing_accepts_connect_options() -> None:
    assert parse_version_range(b"v157..178") == (157, 178, "")
    assert parse_version_range(b"v100..176 +PACEAPI") == (100, 176, "+PACEAPI")
    with pytest.raises(ProtocolError):
        parse_version_range(b"hello")


def test_numbers_are_formatted_like_tws() -> None:
    assert fmt_size(100.0) == "100"          # ibapi <163 does int(size)
    assert fmt_size(0.5) == "0.5"
    assert fmt_float(497.72) == "497.72"
    assert fmt_float(UNSET_DOUBLE) == "1.7976931348623157E308"
    assert encode_fields([4, 2, -1, 2104, "ok", ""]) == \
        _frame(b"4\x002\x00-1\x002104\x00ok\x00\x00")
    assert encode_fields([True, False, None, 1.5]) == _frame(b"1\x000\x00\x001.5\x00")


def test_field_reader_reports_truncation_and_reads_empty_as_default() -> None:
    r = FieldReader(["", "7", "1.5", "", "1"])
    assert r.integer(-1) == -1
    assert r.integer() == 7
    assert r.number() == 1.5
    assert r.number() == UNSET_DOUBLE
    assert r.flag() is True
    with pytest.raises(ValueError, match="truncated"):
        r.text()
    assert r.text_or("dflt") == "dflt"
