"""The chunked-body decoder, byte by byte: every split of a read gives the same payload."""

from __future__ import annotations

import h11
import httpx
import pytest

from providers.chunked import MAX_LINE, ChunkedDecoder

BODY = b"5\r\nhello\r\n1;name=value\r\n \r\n6  \r\nworld!\r\n0\r\n\r\n"


def decode(*reads: bytes) -> tuple[bytes, ChunkedDecoder]:
    decoder = ChunkedDecoder()
    return b"".join(decoder.feed(r) for r in reads), decoder


def test_a_body_gives_its_payload_however_the_reads_split_it() -> None:
    for cut in range(len(BODY) + 1):
        for second in range(cut, len(BODY) + 1):
            payload, decoder = decode(BODY[:cut], BODY[cut:second], BODY[second:])
            assert payload == b"hello world!", (cut, second)
            assert decoder.done


def test_one_byte_at_a_time_gives_the_same_payload() -> None:
    payload, decoder = decode(*(BODY[i : i + 1] for i in range(len(BODY))))
    assert payload == b"hello world!"
    assert decoder.done and not decoder.leftover


def test_trailer_fields_are_read_past_and_ignored() -> None:
    payload, decoder = decode(b"3\r\nabc\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n")
    assert payload == b"abc" and decoder.done


def test_upper_case_hex_sizes_are_read() -> None:
    assert decode(b"A\r\n0123456789\r\n0\r\n\r\n")[0] == b"0123456789"


def test_bytes_after_the_end_are_kept_apart_not_decoded() -> None:
    payload, decoder = decode(b"1\r\na\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert payload == b"a"
    assert decoder.leftover == b"HTTP/1.1 200 OK\r\n"


@pytest.mark.parametrize(
    "body",
    [b"zz\r\nab\r\n", b"0x2\r\nab\r\n", b"+2\r\nab\r\n", b"1_0\r\n", b"\r\n", b"2\r\nabc\r\n", b"2\r\nab\n"],
)
def test_a_malformed_body_is_a_protocol_error_as_httpx_would_raise(body: bytes) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        decode(body, b"0\r\n\r\n")


def test_a_size_line_that_never_ends_is_refused_without_buffering_it_all() -> None:
    decoder = ChunkedDecoder()
    decoder.feed(b"1" * 10)
    with pytest.raises(httpx.RemoteProtocolError):
        decoder.feed(b"1" * MAX_LINE)


# rest_of_message: the bytes that bring h11, holding what we have decoded, to the end.


def h11_after_head(buffered: bytes) -> h11.Connection:
    """An h11 client connection that has read a chunked response head with ``buffered`` behind it."""
    connection = h11.Connection(h11.CLIENT)
    connection.send(h11.Request(method="POST", target="/", headers=[("Host", "x"), ("Content-Length", "0")]))
    connection.send(h11.EndOfMessage())
    connection.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + buffered)
    assert isinstance(connection.next_event(), h11.Response)
    return connection


def test_wherever_the_buffered_bytes_end_the_rest_brings_h11_to_the_end_of_the_message() -> None:
    for cut in range(len(BODY) + 1):
        decoder = ChunkedDecoder()
        decoder.feed(BODY[:cut])
        rest = decoder.rest_of_message()
        if rest is None:
            continue  # a half-read size or trailer line: the connection is closed instead
        connection = h11_after_head(BODY[:cut])
        if rest:
            connection.receive_data(rest)
        while not isinstance(event := connection.next_event(), h11.EndOfMessage):
            assert event is not h11.NEED_DATA, f"h11 still wants data after a cut at {cut}"
        assert connection.their_state is h11.DONE
        connection.start_next_cycle()  # reusable: both sides idle, nothing left over
        assert connection.trailing_data == (b"", False)


def test_a_cut_at_a_chunk_boundary_or_inside_data_keeps_the_connection_reusable() -> None:
    # Before anything, after "5\r\n", inside "hello", after it, inside its CRLF, at the end.
    for cut in (0, 3, 5, 8, 9, len(BODY)):
        decoder = ChunkedDecoder()
        decoder.feed(BODY[:cut])
        assert decoder.rest_of_message() is not None, cut


def test_a_cut_inside_a_size_line_gives_up_reuse_rather_than_guess() -> None:
    decoder = ChunkedDecoder()
    decoder.feed(b"1;name=va")
    assert decoder.rest_of_message() is None
