"""WebSocket fan-out of one venue: subscriptions, per-socket send queues, stalls.

Every socket gets a queue and one writer task, so a frame is serialized once and
a slow client never blocks the market loop; a client whose queue passes
`max_queue` frames is disconnected (as real venues do with slow consumers).
Frames are sent as TEXT, like the venues. Only the simulator's loop may call in.

The writer sends every frame queued when it wakes in one write to the socket (one system
call, one wake-up of the reader) on a connection without compression, instead of one
write a frame: at 10k frames/s the writers' share of the simulator's samples went from 15%
to 7% (py-spy, 2026-12-02); it stands in for a venue, so its cost must not hide ours.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
from typing import Any, Callable

from aiohttp import WSMsgType, web

log = logging.getLogger("venue.hub")

Wrapper = Callable[[str, bytes], bytes]
_ids = itertools.count(1)
_TEXT_FIN = 0x81            # FIN + TEXT: a whole text frame (RFC 6455 5.2); a server's is not masked
_LEN16, _LEN64 = struct.Struct("!BBH").pack, struct.Struct("!BBQ").pack
HIGH_WATER = 1 << 20        # bytes the socket's send buffer may hold before the writer waits


def text_frame(payload: bytes) -> bytes:
    """`payload` as one unmasked, uncompressed TEXT frame (what a server sends)."""
    n = len(payload)
    if n < 126:
        return bytes((_TEXT_FIN, n)) + payload
    if n < 65536:
        return _LEN16(_TEXT_FIN, 126, n) + payload
    return _LEN64(_TEXT_FIN, 127, n) + payload


class Client:
    """One WebSocket connection: its subscriptions, queue and stall state."""

    def __init__(self, hub: "Hub", ws: web.WebSocketResponse, request: web.Request, wrap: bool):
        self.hub = hub
        self.ws = ws
        self.transport = request.transport
        self.wrap = wrap                    # Binance combined stream: {"stream":..,"data":..}
        self.conn_id = f"{next(_ids):08x}"
        self.streams: set[str] = set()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.stall_until = 0.0
        self.stall_key: str | None = None
        self.stall_drop = False
        self.held: list[bytes] = []
        self.closed = False
        self.state: dict[str, Any] = {}     # venue-specific per-connection data

    def push(self, key: str | None, frame: bytes) -> None:
        """Queue a frame; `key` (a symbol) lets a per-symbol stall hold it."""
        if self.closed:
            return
        if self.queue.qsize() >= self.hub.max_queue:
            self.hub.slow_disconnects += 1
            log.warning("%s: disconnecting slow client %s", self.hub.venue, self.conn_id)
            self.hub.close(self, abrupt=False, code=1008)
            return
        self.queue.put_nowait((key, frame))

    def stall(self, seconds: float, key: str | None, drop: bool) -> None:
        """Hold (or drop) this socket's frames of `key` (all when None) for a while."""
        loop = asyncio.get_running_loop()
        self.stall_until = loop.time() + seconds
        self.stall_key = key
        self.stall_drop = drop
        self.queue.put_nowait(None)         # wake the writer so it sees the deadline

    async def run_writer(self) -> None:
        """Send queued frames until the socket closes; honour stalls."""
        try:
            await self._write_loop()
        except (ConnectionError, RuntimeError) as exc:  # peer went away mid-send
            log.debug("%s: writer of %s ends: %s", self.hub.venue, self.conn_id, exc)
            self.closed = True

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        send = self.ws.send_frame
        while not self.closed:
            if self.stall_until:
                now = loop.time()
                if now >= self.stall_until:
                    self.stall_until = 0.0
                    held, self.held = self.held, []
                    for frame in held:
                        await send(frame, WSMsgType.TEXT)
                    continue
                try:
                    item = await asyncio.wait_for(self.queue.get(), self.stall_until - now)
                except TimeoutError:
                    continue
            else:
                item = await self.queue.get()
            if item is None:
                continue
            key, frame = item
            if self.stall_until and (self.stall_key is None or self.stall_key == key):
                if self.stall_drop:
                    self.hub.stall_dropped += 1
                else:
                    self.held.append(frame)
                continue
            if self.stall_until or self.ws.compress or self.transport is None:
                await send(frame, WSMsgType.TEXT)
                continue
            await self._write_together(frame)

    async def _write_together(self, frame: bytes) -> None:
        """`frame` and every frame queued behind it in one write (no stall is on: stall()
        queues a None, and nothing else runs until this awaits)."""
        frames = [text_frame(frame)]
        queue = self.queue
        while not queue.empty():
            item = queue.get_nowait()
            if item is not None:
                frames.append(text_frame(item[1]))
        transport = self.transport
        if transport.is_closing():
            raise ConnectionResetError("socket closing")
        transport.write(b"".join(frames))
        while transport.get_write_buffer_size() > HIGH_WATER and not transport.is_closing():
            await asyncio.sleep(0.001)      # a slow reader: its queue grows until max_queue drops it


class Hub:
    """All market-data sockets of one venue and who subscribed to what."""

    def __init__(self, venue: str, wrapper: Wrapper | None = None, max_queue: int = 200_000):
        self.venue = venue
        self.wrapper = wrapper
        self.max_queue = max_queue
        self.clients: set[Client] = set()
        self.subs: dict[str, set[Client]] = {}
        self.sent: dict[str, int] = {}
        self.connections_total = 0
        self.disconnects = 0
        self.slow_disconnects = 0
        self.stall_dropped = 0

    def has(self, stream: str) -> bool:
        """Tell whether anyone listens to a stream."""
        return bool(self.subs.get(stream))

    def subscribe(self, client: Client, stream: str) -> None:
        """Add a stream to a client."""
        client.streams.add(stream)
        self.subs.setdefault(stream, set()).add(client)

    def unsubscribe(self, client: Client, stream: str) -> None:
        """Remove a stream from a client."""
        client.streams.discard(stream)
        listeners = self.subs.get(stream)
        if listeners is not None:
            listeners.discard(client)
            if not listeners:
                del self.subs[stream]

    def publish(self, stream: str, key: str | None, raw: bytes, kind: str) -> None:
        """Send a frame to every subscriber of a stream (wrapped where asked)."""
        listeners = self.subs.get(stream)
        if not listeners:
            return
        wrapped = None
        for client in tuple(listeners):
            if client.wrap:
                if wrapped is None:
                    wrapped = self.wrapper(stream, raw) if self.wrapper else raw
                client.push(key, wrapped)
            else:
                client.push(key, raw)
        self.sent[kind] = self.sent.get(kind, 0) + len(listeners)

    def stall_all(self, seconds: float, key: str | None, drop: bool,
                  category: str | None = None) -> int:
        """Stall every open socket (of `category`, where the venue sets one); return how many."""
        clients = [c for c in self.clients if category is None or c.state.get("category") == category]
        for client in clients:
            client.stall(seconds, key, drop)
        return len(clients)

    def close(self, client: Client, abrupt: bool, code: int = 1001) -> None:
        """Close one socket, gracefully (close frame) or abruptly (drop TCP)."""
        if client.closed:
            return
        client.closed = True
        client.queue.put_nowait(None)
        self.disconnects += 1
        if abrupt and client.transport is not None:
            client.transport.abort()
        else:
            asyncio.ensure_future(client.ws.close(code=code, message=b"venue simulator closed"))

    def close_all(self, abrupt: bool) -> int:
        """Close every socket; return how many."""
        clients = list(self.clients)
        for client in clients:
            self.close(client, abrupt)
        return len(clients)

    async def serve(self, request: web.Request, wrap: bool,
                    on_text: Callable[[Client, str], None],
                    on_open: Callable[[Client], None] | None = None) -> web.WebSocketResponse:
        """Run one WebSocket connection: writer task plus the read loop."""
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=1 << 20)
        await ws.prepare(request)
        client = Client(self, ws, request, wrap)
        self.clients.add(client)
        self.connections_total += 1
        writer = asyncio.create_task(client.run_writer())
        try:
            if on_open is not None:
                on_open(client)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    on_text(client, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    on_text(client, msg.data.decode("utf-8", "replace"))
        except ConnectionResetError:
            pass
        finally:
            client.closed = True
            self.clients.discard(client)
            for stream in list(client.streams):
                self.unsubscribe(client, stream)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        return ws

    async def shutdown(self, _app: web.Application | None = None) -> None:
        """Close every socket with a close frame (aiohttp on_shutdown hook)."""
        for client in list(self.clients):
            client.closed = True
            client.queue.put_nowait(None)
            await client.ws.close(code=1001, message=b"venue simulator stopping")

    def stats(self) -> dict[str, Any]:
        """Return connection and message counters."""
        return {
            "connections": len(self.clients),
            "connections_total": self.connections_total,
            "disconnects": self.disconnects,
            "slow_disconnects": self.slow_disconnects,
            "stall_dropped": self.stall_dropped,
            "messages": dict(self.sent),
        }
