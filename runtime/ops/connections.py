"""The HTTP server's open connections, by peer address, so one can be closed from outside.

hypercorn shields its socket writes from cancellation: a client that stops reading would hold
its connection's task (and the server's stop) until TCP gives up. Closing the socket makes the
blocked write fail at once. The WebSocket handler closes a client that does not take a message
within its send timeout; the server closes them all when it stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext


class Connections:
    """The server's open connections by peer address: what hypercorn's shielded writes need,
    a way to close a connection from outside (a stalled client, the server stopping)."""

    def __init__(self) -> None:
        self._by_peer: dict[tuple[str, int], trio.SocketStream] = {}

    def __len__(self) -> int:
        return len(self._by_peer)

    def close(self, peer: Sequence[Any] | None) -> bool:
        """Close the connection from `peer` (an ASGI scope's "client": host, port); a write
        blocked on it fails at once. False when there is none."""
        stream = self._by_peer.get((str(peer[0]), int(peer[1]))) if peer else None
        if stream is None:
            return False
        stream.socket.close()
        return True

    def close_all(self) -> None:
        for stream in list(self._by_peer.values()):
            stream.socket.close()

    async def serve(self, app: ASGIWrapper, config: Config, context: WorkerContext,
                    stream: trio.SocketStream) -> None:
        try:
            host, port = stream.socket.getpeername()[:2]
        except OSError:
            return                               # gone before it was served
        peer = (str(host), int(port))
        self._by_peer[peer] = stream
        try:
            # typed for TLS streams; plain ones are handled the same (its AttributeError path)
            await TCPServer(app, config, context, {}, cast(Any, stream))
        finally:
            self._by_peer.pop(peer, None)
