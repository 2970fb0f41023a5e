"""The event loop ``dyad serve`` runs: uvloop, accepting every waiting connection at once.

Since libuv 1.45 (under uvloop) a listening socket gives one connection per turn of the
loop. A worker busy with uncached answers turns its loop once per batch of requests, tens
of milliseconds, so clients connecting together waited their turn to be accepted: with
32 new connections to a busy worker, the first request of the last one began 1.65 s after
it was sent (asyncio's own loop, which accepts up to the backlog at once: 0.11 s). Here
the listening socket is read by a reader of its own that accepts all that wait, as
asyncio's loop does, and uvloop runs everything else.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import uvloop

LOOP = "app.serving:EagerAcceptLoop"
"""uvicorn's ``--loop`` for it (a loop factory, which uvicorn calls with no arguments)."""


class EagerAcceptLoop(uvloop.Loop):
    """uvloop whose TCP servers accept every waiting connection at each turn (TLS and other
    options: uvloop's own server)."""

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | None = None,
        port: int | None = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        **options: Any,
    ) -> Any:
        uvloops: Any = super().create_server  # for what is not a plain TCP host and port
        if ssl is not None or options:
            return await uvloops(
                protocol_factory, host, port, sock=sock, backlog=backlog, ssl=ssl, **options
            )
        if sock is None:
            if host is None or port is None:
                return await uvloops(protocol_factory, host, port, backlog=backlog)
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.create_server((host, port), family=family, backlog=backlog)
        else:
            sock.listen(backlog)
        return Listener(self, sock, protocol_factory, backlog)


class Listener:
    """What uvicorn uses of an asyncio ``Server``: its sockets, ``close``, ``wait_closed``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        backlog: int,
    ) -> None:
        self._loop, self._factory, self._backlog = loop, protocol_factory, backlog
        self.sockets = [sock]
        self._connecting: set[asyncio.Task[Any]] = set()
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(self._backlog):
            try:
                connection, _ = self.sockets[0].accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # gone before it was accepted
                continue
            except OSError:  # out of descriptors, say: the next turn tries again
                return
            connection.setblocking(False)
            task = self._loop.create_task(
                self._loop.connect_accepted_socket(self._factory, connection)
            )
            self._connecting.add(task)  # kept until done: the loop holds tasks weakly
            task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[Any]) -> None:
        self._connecting.discard(task)
        if not task.cancelled():
            task.exception()  # a connection that failed to start is dropped, not logged

    def is_serving(self) -> bool:
        return not self.sockets[0]._closed  # type: ignore[attr-defined]

    def close(self) -> None:
        if self.is_serving():
            self._loop.remove_reader(self.sockets[0].fileno())
            self.sockets[0].close()

    async def wait_closed(self) -> None:
        return None
