"""The event loop `dyad serve` runs accepts every waiting connection at each turn."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn

from app.serving import LOOP, EagerAcceptLoop

CLIENTS = 20


def accepted_by_turn(listen: dict[str, Any]) -> tuple[list[int], bool]:
    """The loop's turn at which each of ``CLIENTS`` connections that wait together is
    made, on a loop that is never idle; and whether the server refuses them once closed."""
    made: list[int] = []
    turn = 0

    class Counted(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            made.append(turn)

    async def main() -> bool:
        nonlocal turn
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Counted, **listen)
        port = server.sockets[0].getsockname()[1]
        # The kernel completes each connection before the server accepts it.
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(CLIENTS)]
        while len(made) < CLIENTS and turn < 10 * CLIENTS:
            turn += 1
            await asyncio.sleep(0)  # one turn of the loop, which polls the sockets
        server.close()
        await server.wait_closed()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            refused = False
        except ConnectionRefusedError:
            refused = True
        for client in clients:
            client.close()
        return refused

    with asyncio.Runner(loop_factory=EagerAcceptLoop) as runner:
        refused = runner.run(main())
    return made, refused


def test_a_busy_loop_accepts_the_connections_that_wait_together_in_one_turn() -> None:
    # uvloop's own server took one connection a turn: the last of 20 at the 20th.
    made, refused = accepted_by_turn({"host": "127.0.0.1", "port": 0})
    assert len(made) == CLIENTS
    assert max(made) <= 3  # accepted, then connected, then made: all together
    assert refused


def test_a_socket_bound_beforehand_is_served_the_same_way() -> None:
    # `dyad serve --workers N` binds the socket once and hands it to each worker.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    made, refused = accepted_by_turn({"sock": sock})
    assert len(made) == CLIENTS and max(made) <= 3
    assert refused


def test_uvicorn_runs_it_from_the_setting_dyad_serve_passes() -> None:
    factory = uvicorn.Config("app.main:create_app", loop=LOOP).get_loop_factory()
    assert factory is EagerAcceptLoop
