"""Per-user fan-out of frames to that user's open sockets, serialised once."""

from __future__ import annotations

from collections.abc import Callable

from chat.protocol import Frame

# A socket's inbox: a frame's JSON text, or an int close code.
Deliver = Callable[[str | int], None]


class Hub:
    def __init__(self) -> None:
        self._sockets: dict[int, set[Deliver]] = {}
        # Where a frame also goes for the user's sockets in other processes (chat.cluster sets
        # it when several processes share the work); None in one process.
        self.relay: Callable[[int, str], None] | None = None

    def subscribe(self, user_id: int, deliver: Deliver) -> None:
        self._sockets.setdefault(user_id, set()).add(deliver)

    def unsubscribe(self, user_id: int, deliver: Deliver) -> None:
        sockets = self._sockets.get(user_id)
        if sockets is not None:
            sockets.discard(deliver)
            if not sockets:
                del self._sockets[user_id]

    def publish(self, user_id: int, frame: Frame) -> None:
        text = frame.json()
        self.publish_text(user_id, text)
        if self.relay is not None:
            self.relay(user_id, text)

    def publish_text(self, user_id: int, text: str) -> None:
        """To this process's sockets of the user only (what other processes forward lands here)."""
        sockets = self._sockets.get(user_id)
        if sockets:
            for deliver in tuple(sockets):
                deliver(text)

    def close_user(self, user_id: int, code: int) -> int:
        """Ask every socket of one user to close; how many there were."""
        sockets = tuple(self._sockets.get(user_id, ()))
        for deliver in sockets:
            deliver(code)
        return len(sockets)

    def close_all(self, code: int) -> None:
        """Ask every open socket to close (after the frames already queued for it)."""
        for sockets in list(self._sockets.values()):
            for deliver in tuple(sockets):
                deliver(code)

    def socket_count(self, user_id: int | None = None) -> int:
        if user_id is not None:
            return len(self._sockets.get(user_id, ()))
        return sum(len(s) for s in self._sockets.values())
