"""Meltica's venue simulator: a local exchange speaking the real venues' wire formats.

Real venue adapters run against it unchanged, on loopback. It imports no other
Meltica package.

Venues (one aiohttp app and one port each; see the modules for every route):
  binance-spot  REST /api/v3 ping, time, exchangeInfo, depth; WS /stream?streams=,
                /ws/<stream>, /ws + SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS;
                streams <sym>@depth@100ms, @depth, @trade, @aggTrade, @bookTicker
                (binance.py)
                and, when synthetic, the signed order API: POST/DELETE/GET
                /api/v3/order, GET/DELETE /api/v3/openOrders; user data over
                the WebSocket API /ws-api/v3 (userDataStream.subscribe.signature,
                executionReport events; the retired listenKey REST answers 410)
                (orders_api.py, userstream.py, matching.py)
  binance-usdm  the same under /fapi/v1, diffs chained by "pu" (binance.py)
  okx           REST /api/v5/public/instruments, /time, /market/books (seqId); WS
                /ws/v5/public with books (updates chained by seqId/prevSeqId,
                checksum 0, keep-alives; the old WS snapshot and checksum as
                options), trades, tickers, ping/pong (okx.py)
  kraken        WS v1 at / (no REST): subscribe/unsubscribe with subscriptionStatus,
                book-N (snapshot, updates cut to N, CRC32 "c"), trade, spread,
                heartbeat, ping/pong (kraken.py)

Market (market.py, book.py): seeded, deterministic; one random-walk mid per
instrument shared by every venue (plus a small per-venue offset); level churn
and synthetic trades; int mantissas formatted as each venue formats decimals.
Replay (replay.py): serve a recorded dataset of /work/shared/data instead.
Matching (matching.py): price-time priority against the synthetic levels and
other user orders; LIMIT GTC/IOC/FOK (spot LIMIT_MAKER, USD-M GTX, OKX post_only: refused
or cancelled if they would take) and MARKET; resting orders fill as the
synthetic market trades into them or moves through their price.
Faults (faults.py): gap, duplicate, reorder, malformed, stale_snapshot, checksum
(OKX, Kraken), stall, disconnect; order path: drop_response, delay_response,
disconnect_userstream, duplicate_report, server_shutdown, delay_subscribe; at
start or via POST /_sim/fault.
Control (control.py): /_sim/fault, /_sim/stats, /_sim/step on every venue app,
and GET /_sim/orders on binance-spot (every order received, counts per id).

In-process use (server.py):

    with Simulator(instruments=2, rate=0, seed=1) as sim:
        sim.endpoints["okx"]["ws"]            # "ws://127.0.0.1:PORT"
        sim.advance(100)                      # step the market now
        sim.inject("okx", "checksum", symbol="BTC-USDT")
        sim.stats()["okx"]["faults"]

Command line: `python -m simulator --help` (__main__.py).
"""

from .faults import FaultError
from .instruments import Instrument, default_instruments
from .server import VENUES, Simulator, SimulatorError

__all__ = ["VENUES", "FaultError", "Instrument", "Simulator", "SimulatorError", "default_instruments"]
