"""The contract between the generation core and its callers: a Job in, a Sink out.

A Job is plain data: whose answer it is, which provider and model to call with which
history, and (for a Continue) the text it grows from. A Sink is where the answer goes:
it saves what the answer starts with, receives every frame, takes checkpoints and the
final state. The chat socket's sink saves rows and publishes to the user's sockets; an
HTTP API's would stream its own format and save only if asked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any, Protocol

from chat.protocol import Frame
from providers.base import ChatRequest, Target


@dataclasses.dataclass(frozen=True)
class Cached:
    """An answer kept by the response cache (chat.response_cache), replayed instead of a call."""

    text: str
    reasoning: str = ""
    finish_reason: str = "stop"
    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclasses.dataclass(frozen=True)
class Job:
    user_id: int
    conversation_id: uuid.UUID
    message_id: uuid.UUID  # the answer's id
    family: str
    target: Target
    request: ChatRequest
    received_at: float  # time.monotonic() when the request arrived: time to first token counts from it
    # A Continue grows a saved answer: its text and frame numbers go on from there.
    prefix: str = ""
    prefix_reasoning: str = ""
    seq_base: int = 0
    source: str = "chat"  # who asked: "chat" (the socket) or "api"
    # A hit of the response cache: replayed with no upstream call (the sinks keep new answers).
    cached: Cached | None = None


def estimate_tokens(text: str) -> int:
    """Roughly a token per four characters (English prose, a BPE tokenizer): for answers
    whose provider reports no usage, marked as estimated wherever it is shown."""
    return -(-len(text) // 4)


@dataclasses.dataclass
class Outcome:
    """How an answer ended, in the words the database keeps."""

    status: str
    reason: str
    content: str
    reasoning: str
    seq: int
    input_tokens: int | None = None
    output_tokens: int | None = None
    usage_estimated: bool = False
    reasoning_tokens: int | None = None
    ttft_ms: int | None = None
    duration_ms: int | None = None  # request received → the answer ended
    error_kind: str = ""
    error_message: str = ""
    error_ref: str = ""
    cached: bool = False  # answered from the response cache: no upstream call, no cost

    def usage_json(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens, "estimated": self.usage_estimated,
        }

    def error_json(self) -> dict[str, str] | None:
        if not self.error_kind:
            return None
        return {"kind": self.error_kind, "message": self.error_message, "ref": self.error_ref}


class Sink(Protocol):
    async def open(self) -> dict[str, Any] | None:
        """Save what the answer starts with, while the upstream call is already under way.

        Returns the answer as a protocol message (the `start` frame's), or None when the
        answer must be dropped: a resend of something already saved, or a save that failed.
        The sink itself tells the requester why; the core just hangs up on the provider.
        """

    async def before_upstream(self, opened: asyncio.Task[dict[str, Any] | None]) -> None:
        """Awaited before the upstream call starts. Alone, an answer's save and its upstream
        call overlap; a sink that sees a burst of saves may hold the call back (waiting for
        `opened` and more), so that every sender hears `ack` before the CPU goes upstream."""

    def publish(self, frame: Frame) -> None:
        """A frame for whoever watches this answer; must never block."""

    def checkpoint(self, content: str, reasoning: str, seq: int) -> None:
        """Partial text to keep in case the process dies; fire and forget."""

    async def finish(self, outcome: Outcome) -> None:
        """Write the final state; raise if it could not be saved (the core retries)."""

    def finished(self, outcome: Outcome) -> None:
        """The final state is saved and announced (titles, metering hang off this)."""

    def closed(self) -> None:
        """The generation is over, however it ended (saved or not): let go of what it held."""
