"""The simulator's own HTTP surface on every venue app: /_sim/*.

  POST   /_sim/fault   body {"fault": name, ...kwargs}  -> {"ok": true, "fault": {...}}
  DELETE /_sim/fault   disarm pending faults           -> {"ok": true, "cleared": n}
  GET    /_sim/stats   counters of this venue
  POST   /_sim/step    body {"count": n}: advance the synthetic market n steps
                       (useful with rate 0, for tests that must not sleep)

Every /_sim/ route answers loopback clients only (403 otherwise), also when the
simulator listens beyond loopback (`--host`; the default is 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Callable, Protocol

import orjson
from aiohttp import web

from .faults import FaultError


class Controlled(Protocol):
    """What a venue app offers to the control endpoints."""

    def inject(self, spec: dict[str, Any]) -> dict[str, Any]: ...
    def clear_faults(self) -> int: ...
    def stats(self) -> dict[str, Any]: ...


def reply(obj: Any, status: int = 200) -> web.Response:
    """Return a JSON response serialized by orjson."""
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")


async def read_json(request: web.Request) -> Any:
    """Parse a request body with orjson; raise FaultError when it is not JSON."""
    body = await request.read()
    try:
        return orjson.loads(body) if body else {}
    except orjson.JSONDecodeError as exc:
        raise FaultError(f"body is not JSON: {exc}") from None


def _loopback(remote: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(remote or "")
    except ValueError:
        return False
    return ip.is_loopback or bool(getattr(ip, "ipv4_mapped", None) and ip.ipv4_mapped.is_loopback)


@web.middleware
async def loopback_only(request: web.Request, handler):
    """Refuse /_sim/ requests that do not come from this host's loopback."""
    if request.path.startswith("/_sim/") and not _loopback(request.remote):
        return reply({"ok": False, "error": f"/_sim/ answers loopback clients only: remote={request.remote}"}, 403)
    return await handler(request)


def add_control_routes(app: web.Application, venue: Controlled,
                       step: Callable[[int], int] | None,
                       market_stats: Callable[[], dict[str, Any]] | None = None) -> None:
    """Mount /_sim/fault, /_sim/stats and /_sim/step on a venue app, for loopback clients."""
    app.middlewares.append(loopback_only)

    async def post_fault(request: web.Request) -> web.Response:
        try:
            spec = venue.inject(await read_json(request))
        except FaultError as exc:
            return reply({"ok": False, "error": str(exc)}, 400)
        return reply({"ok": True, "fault": spec})

    async def delete_fault(_request: web.Request) -> web.Response:
        return reply({"ok": True, "cleared": venue.clear_faults()})

    async def get_stats(_request: web.Request) -> web.Response:
        out = venue.stats()
        if market_stats is not None:
            out["market"] = market_stats()
        return reply(out)

    async def post_step(request: web.Request) -> web.Response:
        try:
            body = await read_json(request)
        except FaultError as exc:
            return reply({"ok": False, "error": str(exc)}, 400)
        count = body.get("count", 1) if isinstance(body, dict) else None
        if step is None:
            return reply({"ok": False, "error": "no synthetic market to step"}, 400)
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= 100_000:
            return reply({"ok": False, "error": f"count must be 1..100000: count={count!r}"}, 400)
        return reply({"ok": True, "steps": step(count)})

    app.router.add_post("/_sim/fault", post_fault)
    app.router.add_delete("/_sim/fault", delete_fault)
    app.router.add_get("/_sim/stats", get_stats)
    app.router.add_post("/_sim/step", post_step)
