"""One incremental decoder for the two streaming framings we meet: SSE and NDJSON.

Every family feeds raw network reads in and gets whole events out, so none of them
re-implements line splitting (the classic bugs: ``data:`` without a space, CRLF
framing, an event split across two reads, keep-alive comments passed to json.loads).
Pure and synchronous: it never touches the network, so it is tested byte by byte.

Lines are split on bytes, never on decoded text: ``str.splitlines`` also splits on
U+2028 and friends, which are legal inside a JSON string.
"""

from __future__ import annotations

import dataclasses

from providers.base import ErrorKind, ProviderError

MAX_LINE = 1 << 20  # one MiB: far above any real chunk, far below a memory problem
_BOM = b"\xef\xbb\xbf"


@dataclasses.dataclass(slots=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None


@dataclasses.dataclass(slots=True)
class Comment:
    """A ``:`` line. Reported, not dropped, so the caller can see keep-alives arrive."""

    text: str


SSEItem = SSEEvent | Comment


def _oversized(size: int) -> ProviderError:
    return ProviderError(ErrorKind.UNAVAILABLE, detail=f"stream line longer than {MAX_LINE} bytes ({size})")


class LineSplitter:
    """Turns arbitrary reads into complete lines, ending in ``\\n``, ``\\r\\n`` or ``\\r``."""

    __slots__ = ("_buf", "_max_line", "_skip_lf")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buf = b""
        # A read that ended on "\r" already closed its line; a "\n" starting the next
        # read is the second half of that CRLF, not an empty line.
        self._skip_lf = False
        self._max_line = max_line

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        data = self._buf + chunk if self._buf else chunk
        end = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if end < 0:
            if len(data) > self._max_line:
                raise _oversized(len(data))
            self._buf = data
            return []
        rest = data[end + 1 :]
        if len(rest) > self._max_line:
            raise _oversized(len(rest))
        self._buf = rest
        if not rest and data[end] == 13:  # b"\r"
            self._skip_lf = True
        lines = data[: end + 1].splitlines()
        if end > self._max_line:
            for line in lines:
                if len(line) > self._max_line:
                    raise _oversized(len(line))
        return lines

    def end(self) -> bytes:
        """Whatever followed the last line break: an unterminated last line."""
        rest, self._buf = self._buf, b""
        return rest


class SSEDecoder:
    """WHATWG event-stream rules, fed bytes, returning whole events and comments.

    One deliberate extension: an ``error:`` field (legacy llama.cpp sends its in-stream
    errors that way) becomes an event named ``error`` instead of being ignored as the
    spec says, so the error cannot vanish and leave a silently truncated answer.
    """

    __slots__ = ("_data", "_event", "_id", "_lines", "_started")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._lines = LineSplitter(max_line)
        self._data: list[bytes] = []
        self._event = ""
        self._id: str | None = None
        self._started = False

    def feed(self, chunk: bytes) -> list[SSEItem]:
        if not self._started and chunk:
            self._started = True
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
        out: list[SSEItem] = []
        data = self._data
        for line in self._lines.feed(chunk):
            if not line:
                if data:
                    out.append(
                        SSEEvent(
                            b"\n".join(data).decode("utf-8", "replace"), self._event or "message", self._id
                        )
                    )
                    data.clear()
                self._event = ""
                continue
            if line[0] == 58:  # b":"
                out.append(Comment(line[1:].strip().decode("utf-8", "replace")))
                continue
            field, colon, value = line.partition(b":")
            if colon and value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                data.append(value)
            elif field == b"event":
                self._event = value.decode("utf-8", "replace")
            elif field == b"id":
                if b"\0" not in value:
                    self._id = value.decode("utf-8", "replace")
            elif field == b"error":
                self._event = "error"
                data.append(value)
            # "retry" and unknown fields are ignored, as the spec says.
        return out

    def end(self) -> list[SSEItem]:
        """At EOF the spec discards a half-built event; a half line is not a line."""
        self._lines.end()
        self._data.clear()
        self._event = ""
        return []


class NDJSONDecoder:
    """One JSON document per line (Ollama); yields each non-blank line as bytes."""

    __slots__ = ("_lines",)

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._lines = LineSplitter(max_line)

    def feed(self, chunk: bytes) -> list[bytes]:
        return [line for line in self._lines.feed(chunk) if line.strip()]

    def end(self) -> list[bytes]:
        """A last line without its newline is still a line in NDJSON."""
        rest = self._lines.end()
        return [rest] if rest.strip() else []
