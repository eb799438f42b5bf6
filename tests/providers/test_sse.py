"""The shared SSE / NDJSON decoder, fed bytes the way a network delivers them."""

from __future__ import annotations

import time

import pytest

from providers.base import ErrorKind, ProviderError
from providers.sse import Comment, NDJSONDecoder, SSEDecoder, SSEEvent

# Recorded-style streams: OpenRouter comments, TGI "data:" without a space, Gemini CRLF,
# an Anthropic named event, a multi-line data field and a keep-alive, all in one.
RECORDED = (
    b": OPENROUTER PROCESSING\n\n"
    b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n'
    b'data:{"choices":[{"delta":{"content":"lo \xc3\xa9"}}]}\r\n\r\n'
    b"event: message_stop\r\n"
    b'data: {"type":"message_stop"}\r\n\r\n'
    b":\n"
    b"data: line one\rdata: line two\r\r"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    Comment("OPENROUTER PROCESSING"),
    SSEEvent('{"choices":[{"delta":{"content":"Hel"}}]}'),
    SSEEvent('{"choices":[{"delta":{"content":"lo é"}}]}'),
    SSEEvent('{"type":"message_stop"}', "message_stop"),
    Comment(""),
    SSEEvent("line one\nline two"),
    SSEEvent("[DONE]"),
]


def decode_all(*chunks: bytes) -> list[object]:
    decoder = SSEDecoder()
    out: list[object] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    out.extend(decoder.end())
    return out


def test_it_decodes_a_recorded_stream_in_one_read() -> None:
    assert decode_all(RECORDED) == EXPECTED


def test_it_decodes_the_same_events_whatever_byte_the_reads_split_at() -> None:
    for cut in range(1, len(RECORDED)):
        assert decode_all(RECORDED[:cut], RECORDED[cut:]) == EXPECTED, cut


def test_it_decodes_the_same_events_when_every_byte_is_its_own_read() -> None:
    assert decode_all(*(RECORDED[i : i + 1] for i in range(len(RECORDED)))) == EXPECTED


def test_it_strips_exactly_one_space_after_the_colon() -> None:
    assert decode_all(b"data:  two spaces\n\ndata:none\n\n") == [SSEEvent(" two spaces"), SSEEvent("none")]


def test_it_joins_multi_line_data_with_newlines() -> None:
    assert decode_all(b"data: a\ndata:\ndata: b\n\n") == [SSEEvent("a\n\nb")]


def test_it_reports_comments_so_keepalives_can_be_told_from_content() -> None:
    assert decode_all(b": keep-alive\n\n: ping - 2025-01-01\n\n") == [
        Comment("keep-alive"),
        Comment("ping - 2025-01-01"),
    ]


def test_a_lone_cr_at_the_end_of_a_read_does_not_become_an_extra_blank_line() -> None:
    # Were the "\n" after the split "\r" read as a blank line, "a" would dispatch alone.
    assert decode_all(b"data: a\r", b"\ndata: b\r\n\r\n") == [SSEEvent("a\nb")]


def test_a_cr_only_stream_dispatches_events() -> None:
    assert decode_all(b"data: a\r\rdata: b\r\r") == [SSEEvent("a"), SSEEvent("b")]


def test_it_keeps_the_event_name_and_id_and_resets_the_name_after_each_event() -> None:
    assert decode_all(b"event: error\nid: 7\ndata: x\n\ndata: y\n\n") == [
        SSEEvent("x", "error", "7"),
        SSEEvent("y", "message", "7"),
    ]


def test_an_event_without_data_is_not_dispatched() -> None:
    assert decode_all(b"event: ping\n\nretry: 10\n\n") == []


def test_a_half_event_at_eof_is_discarded() -> None:
    assert decode_all(b"data: complete\n\ndata: cut") == [SSEEvent("complete")]


def test_unicode_line_separators_inside_json_do_not_split_lines() -> None:
    payload = '{"t":"a\u2028b\u0085c"}'
    assert decode_all(f"data: {payload}\n\n".encode()) == [SSEEvent(payload)]


def test_a_leading_byte_order_mark_is_ignored() -> None:
    assert decode_all(b"\xef\xbb\xbfdata: x\n\n") == [SSEEvent("x")]


def test_a_legacy_llama_cpp_error_field_becomes_an_error_event() -> None:
    assert decode_all(b'error: {"code":400}\n\ndata: [DONE]\n\n') == [
        SSEEvent('{"code":400}', "error"),
        SSEEvent("[DONE]"),
    ]


def test_an_oversized_line_raises_instead_of_buffering_forever() -> None:
    decoder = SSEDecoder(max_line=1000)
    decoder.feed(b"data: " + b"x" * 600)
    with pytest.raises(ProviderError) as caught:
        decoder.feed(b"x" * 600)
    assert caught.value.kind is ErrorKind.UNAVAILABLE


def test_an_oversized_line_inside_one_read_raises_too() -> None:
    with pytest.raises(ProviderError):
        SSEDecoder(max_line=1000).feed(b"data: " + b"x" * 2000 + b"\n\n")


def test_ndjson_yields_each_line_and_a_final_unterminated_one() -> None:
    decoder = NDJSONDecoder()
    lines = decoder.feed(b'{"a":1}\r\n\n{"b"') + decoder.feed(b':2}\n{"c":3}')
    assert lines + decoder.end() == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


def test_decoding_a_small_event_takes_well_under_ten_microseconds() -> None:
    event = b'data: {"choices":[{"index":0,"delta":{"content":" word"},"finish_reason":null}]}\n\n'
    reads = [event * 4] * 5000  # four events per network read, as on a fast stream
    decoder = SSEDecoder()
    started = time.perf_counter()
    for read in reads:
        decoder.feed(read)
    per_event = (time.perf_counter() - started) / 20000
    assert per_event < 10e-6, f"{per_event * 1e6:.2f} µs per event"
