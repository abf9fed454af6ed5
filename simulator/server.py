"""Run the venue apps on one asyncio loop in a background thread.

    with Simulator(venues=("binance-spot", "okx"), instruments=2, rate=50, seed=7) as sim:
        rest = sim.endpoints["binance-spot"]["rest"]     # "http://127.0.0.1:PORT"
        sim.inject("okx", "gap", symbol="BTC-USDT")
        sim.stats()["okx"]["faults"]["applied"]

One loop drives the synthetic market at `rate` steps per second (every
instrument, every venue; rate 0 means only `advance(n)` steps it) and serves
every venue app on its own loopback port.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Iterable

from aiohttp import web

from .binance import COINM, SPOT, USDM, BinanceVenue
from .control import add_control_routes
from .faults import FaultError
from .futures_api import FuturesApi
from .futures_ws import FuturesWsApi
from .instruments import Instrument, default_instruments
from .market import Market
from .kraken import NAME as KRAKEN, KrakenVenue
from .okx import NAME as OKX, OkxVenue
from .orders_api import DEFAULT_KEY, DEFAULT_SECRET, OrdersApi
from .ws_orders import WsOrders
from .replay import Dataset, Replayer, read_meta
from .userstream import LIFETIME_S, PING_INTERVAL_S

DEFAULT_VENUES = (SPOT, USDM, OKX, KRAKEN)
VENUES = DEFAULT_VENUES + (COINM,)       # binance-coinm on request
log = logging.getLogger("venue")
BURST_S = 0.01  # the most market time one turn of the loop steps through (see _drive)


class SimulatorError(RuntimeError):
    """The simulator could not start, or was used after it stopped."""


def replay_venue_of(meta: dict[str, Any]) -> str:
    """Guess the venue a dataset was recorded from its meta.json."""
    exchange, market = meta.get("exchange", ""), meta.get("market", "")
    if exchange == "okx":
        return OKX
    if exchange.startswith("binance"):
        if market == "spot":
            return SPOT
        if market == "usdm_futures":
            return USDM
    raise SimulatorError(f"cannot tell the venue of dataset: exchange={exchange!r} market={market!r}")


class Simulator:
    """A local exchange: Binance spot, USD-M (and COIN-M on request), OKX and Kraken on
    loopback ports."""

    def __init__(self, venues: Iterable[str] = DEFAULT_VENUES, instruments: int | list[Instrument] = 4,
                 rate: float = 20.0, seed: int = 1, depth: int = 400, host: str = "127.0.0.1",
                 port_base: int = 0, replay: str | None = None, replay_venue: str | None = None,
                 replay_speed: float = 0.0, faults: Iterable[dict[str, Any]] = (),
                 api_key: str = DEFAULT_KEY, api_secret: str = DEFAULT_SECRET,
                 user_stream_lifetime: float = LIFETIME_S, user_stream_ping: float = PING_INTERVAL_S,
                 okx: dict[str, Any] | None = None):
        self.okx_options = dict(okx or {})     # OkxVenue options: ws_snapshot, checksum, keepalive_s
        self.venue_names = list(dict.fromkeys(venues))
        for name in self.venue_names:
            if name not in VENUES:
                raise SimulatorError(f"unknown venue: venue={name!r}; known: {list(VENUES)}")
        if rate < 0:
            raise SimulatorError(f"rate must be >= 0: rate={rate}")
        self.instruments = (default_instruments(instruments) if isinstance(instruments, int)
                            else list(instruments))
        self.rate = float(rate)
        self.seed = seed
        self.depth = depth
        self.host = host
        self.port_base = port_base
        self.replay_path = replay
        self.replay_speed = replay_speed
        self.initial_faults = list(faults)
        self.api_key, self.api_secret = api_key, api_secret
        if user_stream_lifetime <= 0 or user_stream_ping <= 0:
            raise SimulatorError(f"user stream lifetime and ping interval must be > 0: "
                                 f"lifetime={user_stream_lifetime} ping={user_stream_ping}")
        self.user_stream = {"lifetime_s": float(user_stream_lifetime), "ping_interval_s": float(user_stream_ping)}
        self.replay_venue = None
        if replay is not None:
            self.replay_venue = replay_venue or replay_venue_of(read_meta(replay))
            if self.replay_venue not in VENUES:
                raise SimulatorError(f"unknown replay venue: venue={self.replay_venue!r}")
            if self.replay_venue == KRAKEN:
                raise SimulatorError("replay is not supported for kraken (synthetic only)")
            if self.replay_venue not in self.venue_names:
                self.venue_names.append(self.replay_venue)
            self._dataset = Dataset(replay, "okx" if self.replay_venue == OKX else "binance")
        self.endpoints: dict[str, dict[str, str]] = {}
        self.venues: dict[str, Any] = {}
        self.market: Market | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._runners: list[web.AppRunner] = []

    # -- lifecycle ----------------------------------------------------------
    def start(self, timeout: float = 30.0) -> "Simulator":
        """Start the loop thread and return once every venue listens."""
        if self._thread is not None:
            raise SimulatorError("simulator already started")
        self._thread = threading.Thread(target=self._run, name="venue-sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise SimulatorError(f"simulator did not start within {timeout}s")
        if self._error is not None:
            self._thread.join(5)
            raise SimulatorError(f"simulator failed to start: {self._error!r}") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close every socket and port and join the loop thread."""
        if self._thread is None or self._loop is None:
            return
        if self._thread.is_alive() and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *_exc: Any) -> None:
        self.stop()

    # -- control ------------------------------------------------------------
    def inject(self, venue: str, fault: str, **kwargs: Any) -> dict[str, Any]:
        """Arm or apply a fault on one venue; return the normalized fault.

        Raise FaultError (a ValueError) for an unknown fault, parameter or symbol.
        """
        target = self._venue(venue)
        return self.call(lambda: target.inject({"fault": fault, **kwargs}))

    def clear_faults(self, venue: str) -> int:
        """Disarm the pending faults of one venue."""
        target = self._venue(venue)
        return self.call(target.clear_faults)

    def stats(self) -> dict[str, Any]:
        """Return every venue's counters, and the market's."""
        def collect() -> dict[str, Any]:
            out = {name: v.stats() for name, v in self.venues.items()}
            out["market"] = self._market_stats()
            return out
        return self.call(collect)

    def advance(self, steps: int = 1) -> int:
        """Step the synthetic market `steps` times now; return the total steps."""
        return self.call(lambda: self._step(steps))

    def call(self, fn: Any, timeout: float = 10.0) -> Any:
        """Run fn() on the simulator's loop and return its result."""
        if self._loop is None or self._thread is None:
            raise SimulatorError("simulator is not running")

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def _venue(self, name: str) -> Any:
        if name not in self.venues:
            raise FaultError(f"unknown venue: venue={name!r}; running: {sorted(self.venues)}")
        return self.venues[name]

    def _market_stats(self) -> dict[str, Any]:
        return {"steps": self.market.steps if self.market else 0, "rate": self.rate,
                "seed": self.seed, "instruments": [i.canonical for i in self.instruments]}

    # -- the loop thread ----------------------------------------------------
    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # reported to start()
            self._error = exc
            loop.run_until_complete(self._shutdown())
            loop.close()
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_until_complete(self._stop.wait())
        finally:
            loop.run_until_complete(self._shutdown())
            loop.close()

    async def _startup(self) -> None:
        self._stop = asyncio.Event()
        synthetic = [v for v in self.venue_names if v != self.replay_venue]
        if synthetic:
            self.market = Market(self.instruments, synthetic, self.seed, self.depth)
        for name in self.venue_names:
            self.venues[name] = self._build(name)
        for name in self.venue_names:
            venue = self.venues[name]
            step = self._step if self.market and name != self.replay_venue else None
            add_control_routes(venue.app, venue, step, self._market_stats)
            runner = web.AppRunner(venue.app, access_log=None, handle_signals=False,
                                   shutdown_timeout=1.0)
            await runner.setup()
            self._runners.append(runner)
            port = self.port_base + VENUES.index(name) if self.port_base else 0
            site = web.TCPSite(runner, self.host, port, reuse_address=True)
            await site.start()
            bound = runner.addresses[0][1]
            self.endpoints[name] = {"rest": f"http://{self.host}:{bound}",
                                    "ws": f"ws://{self.host}:{bound}"}
            log.info("%s listening on %s", name, self.endpoints[name]["rest"])
        for spec in self.initial_faults:
            spec = dict(spec)
            self._venue(spec.pop("venue")).inject(spec)
        if self.market is not None and self.rate > 0:
            self._driver = asyncio.ensure_future(self._drive())

    def _build(self, name: str) -> Any:
        replay = None
        if name == self.replay_venue:
            replay = Replayer(self._dataset, self.replay_speed)
            insts, drivers = self._dataset.instruments, None
        else:
            insts = self.instruments
            drivers = {i.canonical: self.market.driver(name, i.canonical) for i in insts}
        if name == OKX:
            return OkxVenue(insts, drivers, replay, api_key=self.api_key, api_secret=self.api_secret,
                            **self.okx_options)
        if name == KRAKEN:
            return KrakenVenue(insts, drivers)
        venue = BinanceVenue(name, insts, drivers, replay)
        if name == SPOT and replay is None:
            WsOrders(OrdersApi(venue, self.api_key, self.api_secret, **self.user_stream))
        if name == USDM and replay is None:
            FuturesWsApi(FuturesApi(venue, self.api_key, self.api_secret, **self.user_stream), **self.user_stream)
        return venue

    def _step(self, count: int) -> int:
        market = self.market
        for _ in range(count):
            for venue, canonical, trades in market.step():
                self.venues[venue].on_step(canonical, trades)
        return market.steps

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.rate
        t0, done = loop.time(), 0
        while True:
            due = int((loop.time() - t0) * self.rate) - done
            if due > 0:
                if due > max(1, int(self.rate)):     # fell behind by > 1 s: skip, don't burst
                    log.warning("market loop behind by %d steps; skipping them", due)
                    done += due - 1
                    due = 1
                # catch up 10 ms of steps per turn at most: order requests and sends are served
                # between (one catch-up of 500 steps held an order's reply for seconds)
                due = min(due, max(1, int(self.rate * BURST_S)))
                try:
                    self._step(due)
                except Exception:
                    log.exception("market step failed")
                done += due
            await asyncio.sleep(max(0.0, t0 + (done + 1) * period - loop.time()))

    async def _shutdown(self) -> None:
        driver = getattr(self, "_driver", None)
        if driver is not None:
            driver.cancel()
            await asyncio.gather(driver, return_exceptions=True)
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners = []
