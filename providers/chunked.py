"""HTTP/1.1 chunked transfer coding (RFC 9112 §7.1), decoded incrementally from raw reads.

The direct body reader (providers/transport.py) hands every read of a streamed answer
here and the payload on to the SSE/NDJSON decoder, instead of through h11 and httpx's
iterators. Pure and synchronous, so it is tested byte by byte like providers/sse.py. It
accepts what h11 accepts (hex size, optional extensions and trailing whitespace, CRLF
line ends, trailer fields ignored) and raises httpx.RemoteProtocolError, as httpx would,
on anything else, so the error a user sees does not depend on which reader ran.
"""

from __future__ import annotations

import re

import httpx

# A size line as h11 reads it: 1-16 hex digits (more than an exabyte is not a chunk),
# optional whitespace, optional ";extensions" we ignore.
_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;.*)?")
MAX_LINE = 64 * 1024  # size and trailer lines; h11 under httpcore allows 100 KiB per event

SIZE, DATA, DATA_END, TRAILER, DONE = range(5)


def _malformed(why: str) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(f"malformed chunked body: {why}")


class ChunkedDecoder:
    """Feed raw body bytes, get the payload bytes they carry; ``done`` after the last chunk."""

    __slots__ = ("_buf", "_left", "leftover", "state")

    def __init__(self) -> None:
        self.state = SIZE
        self._buf = b""  # an unfinished size line, CRLF or trailer
        self._left = 0  # DATA: payload bytes still to come; DATA_END: bytes of its CRLF
        self.leftover = b""  # bytes after the end of the body (a broken server)

    @property
    def done(self) -> bool:
        return self.state == DONE

    def feed(self, data: bytes) -> bytes:
        if self._buf:
            data, self._buf = self._buf + data, b""
        out: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end:
            state = self.state
            if state == SIZE:
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    self._keep(data[pos:], "size line")
                    break
                match = _SIZE_LINE.fullmatch(data, pos, eol)
                if match is None:
                    raise _malformed(f"bad chunk size line {data[pos:eol][:40]!r}")
                size = int(match.group(1), 16)
                pos = eol + 2
                stop = pos + size
                if size and stop + 2 <= end and data[stop : stop + 2] == b"\r\n":
                    out.append(data[pos:stop])  # the usual case: a whole chunk in this read
                    pos = stop + 2
                else:
                    self.state, self._left = (DATA, size) if size else (TRAILER, 0)
            elif state == DATA:
                take = min(self._left, end - pos)
                out.append(data[pos : pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self.state, self._left = DATA_END, 2
            elif state == DATA_END:
                expected = b"\r\n"[2 - self._left :]
                got = data[pos : pos + self._left]
                if not expected.startswith(got):
                    raise _malformed("chunk data longer than its size")
                pos += len(got)
                self._left -= len(got)
                if not self._left:
                    self.state = SIZE
            elif state == TRAILER:
                # Trailer fields, then an empty line; their content is ignored, as h11 hands
                # httpx trailers nobody reads.
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    self._keep(data[pos:], "trailer line")
                    break
                line_empty = eol == pos
                pos = eol + 2
                if line_empty:
                    self.state = DONE
            else:
                self.leftover += data[pos:]
                break
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    def _keep(self, rest: bytes, what: str) -> None:
        if len(rest) > MAX_LINE:
            raise _malformed(f"{what} longer than {MAX_LINE} bytes")
        self._buf = rest

    def rest_of_message(self) -> bytes | None:
        """Bytes that take a parser standing where this one stands to the end of the body.

        The direct reader asks this right after decoding what h11 had already buffered:
        h11 holds those same bytes unparsed, so once the real body has been read, feeding
        h11 this brings it to the end of the message and httpcore keeps the connection
        for the next request. Payload bytes are filler h11 hands out and nobody reads.
        None where that is not simple (a half-read size or trailer line): the connection
        is then closed after the answer instead of reused.
        """
        if self.state == DONE:
            return b""
        if self._buf:
            return None
        if self.state == SIZE:
            return b"0\r\n\r\n"
        if self.state == DATA:
            return b"\0" * self._left + b"\r\n0\r\n\r\n"
        if self.state == DATA_END:
            return b"\r\n"[2 - self._left :] + b"0\r\n\r\n"
        return b"\r\n" if self.state == TRAILER else None
