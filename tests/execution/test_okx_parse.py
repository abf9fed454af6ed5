"""OKX trading payloads -> venue events, from OKX's documented examples; the clOrdId form;
sizes of swaps (contracts x ctVal) and quotes exact; signing; reply outcomes."""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson
import pytest

from events import BadInput, ExecStatus, PeerGone, Provider, Registry
from execution.ids import ALNUM_LENGTH, LENGTH, is_ours, venue_client_order_id
from venues.okx.trading import parse
from venues.okx.trading.private_ws import login_args, private_url
from venues.okx.trading.rest import OkxRefused, answer, iso_ms, sign
from venues.trading import Balance, VenueOrderReported, VenueRequestRefused

pytestmark = pytest.mark.timeout(30)

# docs "WS / Order channel", push data example (as of 2026-06), trimmed to the fields we read
DOC_PUSH = {"accFillSz": "0.001", "amendResult": "", "avgPx": "31527.1", "cancelSource": "", "clOrdId": "",
            "code": "0", "cTime": "1654084334977", "execType": "M", "fee": "-0.02522168", "feeCcy": "USDT",
            "fillFee": "-0.02522168", "fillFeeCcy": "USDT", "fillPx": "31527.1", "fillSz": "0.001",
            "fillTime": "1654084353263", "instId": "BTC-USDT", "instType": "SPOT", "msg": "",
            "ordId": "452197707845865472", "ordType": "limit", "px": "31527.1", "reqId": "", "side": "sell",
            "state": "filled", "sz": "0.001", "tdMode": "cash", "tradeId": "242589207",
            "uTime": "1654084353264"}
SPOT_INFO = {"instType": "SPOT", "instId": "BTC-USDT", "tickSz": "0.1", "lotSz": "0.00000001",
             "minSz": "0.00001", "state": "live", "ctVal": "", "ctValCcy": ""}
SWAP_INFO = {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "tickSz": "0.1", "lotSz": "0.01", "minSz": "0.01",
             "ctVal": "0.01", "ctValCcy": "BTC", "ctType": "linear", "state": "live"}


@pytest.fixture
def reg() -> parse.OkxRegistry:
    return parse.load_registry([SPOT_INFO, SWAP_INFO, {**SWAP_INFO, "instId": "BTC-USD-SWAP", "ctVal": "100",
                                                       "ctValCcy": "USD", "ctType": "inverse"}])


def test_the_alnum_client_order_id_is_okx_safe_stable_distinct_and_ours():
    a = venue_client_order_id(1, "o-1", form="alnum")
    assert a == venue_client_order_id(1, "o-1", form="alnum") and len(a) == ALNUM_LENGTH == 32
    assert a.isalnum() and a.isascii() and a.startswith("m00000001")
    ids = {venue_client_order_id(c, f"o-{i}", form="alnum") for c in (1, 2, 0x7FFFFFFF) for i in range(1000)}
    assert len(ids) == 3000
    # the Binance form is unchanged (ids in existing stores keep matching), and both are ours
    b = venue_client_order_id(1, "o-1")
    assert b == venue_client_order_id(1, "o-1", form="base64url") and len(b) == LENGTH
    assert b == "m00000001" + base64.urlsafe_b64encode(hashlib.blake2b(
        b"o-1", digest_size=18, person=b"meltica-coid").digest()).decode()
    assert a[9:] == hashlib.blake2b(b"o-1", digest_size=18, person=b"meltica-coid").hexdigest()[:23]
    assert is_ours(a) and is_ours(b)
    # an amend's new venue order (cancel-replace venues) hashes "coid#n", in either form
    assert venue_client_order_id(1, "o-1", 2, form="alnum") == "m00000001" + hashlib.blake2b(
        b"o-1#2", digest_size=18, person=b"meltica-coid").hexdigest()[:23] != a
    assert not is_ours("m" + "z" * 31) and not is_ours("x" * 32) and not is_ours("b15")
    with pytest.raises(ValueError, match="unknown client order id form"):
        venue_client_order_id(1, "o-1", form="hex")


def test_instruments_spot_at_step_scales_and_linear_swaps_in_base_units(reg):
    spot, swap = reg.by_symbol("BTC-USDT"), reg.by_symbol("BTC-USDT-PERP")
    assert (spot.px_scale, spot.sz_scale, spot.tick, spot.lot) == (1, 8, 1, 1)
    # 0.01 contract x 0.01 BTC = 0.0001 BTC: scale 2 + 2, lot 1
    assert (swap.px_scale, swap.sz_scale, swap.tick, swap.lot) == (1, 4, 1, 1)
    assert reg.venue_symbol(Provider.OKX, swap.id) == "BTC-USDT-SWAP"
    assert "BTC-USD-PERP" not in reg      # inverse swaps are left out (sizes in USD)
    s = reg.spec("BTC-USDT-SWAP")
    assert (s.td_mode, s.to_sz(123), s.qty("1.23"), s.qty("")) == ("cross", "1.23", 123, 0)
    assert reg.spec("BTC-USDT").td_mode == "cash"


def test_swap_sizes_convert_exactly_both_ways_and_refuse_a_partial_contract():
    s = parse.instrument({**SWAP_INFO, "instId": "ETH-USDT-SWAP", "ctVal": "0.1", "ctValCcy": "ETH",
                          "lotSz": "1"})
    assert (s.inst.sz_scale, s.ct, s.sz_dec, s.inst.lot) == (1, 1, 0, 1)   # 1 contract = 0.1 ETH
    assert s.to_sz(37) == "37" and s.qty("37") == 37
    big = parse.instrument({**SWAP_INFO, "instId": "PEPE-USDT-SWAP", "ctVal": "10000000", "ctValCcy": "PEPE",
                            "lotSz": "0.1", "tickSz": "0.0000000001"})
    # 0.1 contract = 1,000,000 PEPE = 10,000,000 mantissas at scale 1
    assert (big.inst.sz_scale, big.ct, big.inst.lot) == (1, 10_000_000, 10_000_000)
    assert big.to_sz(3 * 10_000_000) == "0.3" and big.qty("0.3") == 30_000_000
    with pytest.raises(BadInput, match="whole number of contracts"):
        big.to_sz(1)


def test_the_documented_orders_push_is_a_fill_with_exact_quote_and_fee(reg):
    d = {**DOC_PUSH, "clOrdId": "m00000001abc"}
    r = parse.order(d, reg, "stream")
    assert isinstance(r, VenueOrderReported)
    assert r.client_order_ids == ("m00000001abc",) and r.status is ExecStatus.FILLED
    assert (r.venue_order_id, r.cum_qty, r.last_qty, r.last_px, r.trade_id) == (452197707845865472, 100_000, 100_000,
                                                                                315271, 242589207)
    assert r.cum_quote == 100_000 * 315271           # at px_scale + sz_scale
    assert (r.fee, r.fee_asset) == (252216800, "USDT")   # charged, at FEE_SCALE 10
    assert (r.price, r.qty, r.amended, r.source) == (315271, 100_000, False, "stream")
    assert r.event_ts_ns == 1654084353264 * 1_000_000
    with pytest.raises(BadInput, match="ordId does not fit an int64"):
        parse.order({**d, "ordId": str(2**63)}, reg, "stream")
    q = parse.order(d, reg, "query")        # REST: fillSz & co. are the last fill, not this report's
    assert (q.last_qty, q.trade_id, q.fee, q.cum_qty, q.source) == (0, -1, 0, 100_000, "query")


def test_states_and_cancel_sources_map_through_tables(reg):
    base = {**DOC_PUSH, "clOrdId": "c", "tradeId": "", "fillSz": "", "accFillSz": "0", "avgPx": ""}
    want = {("live", ""): (ExecStatus.ACK, ""), ("partially_filled", ""): (ExecStatus.PARTIAL, ""),
            ("canceled", "1"): (ExecStatus.CANCELLED, ""), ("mmp_canceled", "39"): (ExecStatus.CANCELLED, ""),
            ("canceled", "14"): (ExecStatus.EXPIRED, "IOC"), ("canceled", "13"): (ExecStatus.EXPIRED, "FOK"),
            ("canceled", "31"): (ExecStatus.EXPIRED, "post-only")}
    for (state, src), (status, why) in want.items():
        r = parse.order({**base, "state": state, "cancelSource": src}, reg, "stream")
        assert r.status is status and why in r.reason, (state, src)
    with pytest.raises(BadInput, match="unknown OKX order state"):
        parse.order({**base, "state": "effective"}, reg, "stream")


def test_an_amend_push_reports_the_new_price_and_size_and_a_failed_one_is_a_refusal(reg):
    d = {**DOC_PUSH, "clOrdId": "c1", "state": "live", "tradeId": "", "fillSz": "", "accFillSz": "0",
         "avgPx": "0", "px": "31000.5", "sz": "0.002", "reqId": "a1", "amendResult": "0"}
    r = parse.order(d, reg, "stream")
    assert r.amended and r.source == "amend" and (r.price, r.qty) == (310005, 200_000)
    bad = parse.order({**d, "amendResult": "-1", "code": "51503", "msg": "Order modification failed"}, reg,
                      "stream")
    assert bad == VenueRequestRefused("c1", "amend", 51503, "Order modification failed")


def test_swap_fills_are_contracts_times_ctval_and_an_uneven_average_rounds(reg):
    d = {**DOC_PUSH, "instId": "BTC-USDT-SWAP", "instType": "SWAP", "clOrdId": "s", "state": "partially_filled",
         "sz": "3", "accFillSz": "2", "fillSz": "2", "fillPx": "65000.1", "avgPx": "65000.05", "px": "65001"}
    r = parse.order(d, reg, "stream")
    assert (r.cum_qty, r.last_qty, r.last_px, r.qty) == (200, 200, 650001, 300)    # 2 x 0.01 BTC
    assert r.cum_quote == 200 * 650001 - 200 * 1 // 2   # 65000.05 x 0.02 BTC, exact at scale 1 + 4
    assert parse.avg_quote(3, "1.25", 1, 0) == 38        # 3.75 rounds half up at scale 1
    assert parse.order(d, reg, "stream", quote=130_000_200).cum_quote == 130_000_200   # the summed trades win


def test_account_balances_and_net_positions(reg):
    bal = [{"uTime": "1", "details": [{"ccy": "USDT", "availBal": "100.5", "frozenBal": "0.25"},
                                      {"ccy": "BTC", "availBal": "0.00000001", "frozenBal": "0"}]}]
    assert parse.balances(bal) == (Balance("USDT", 10050, 25, 2), Balance("BTC", 1, 0, 8))
    pos = [{"instId": "BTC-USDT-SWAP", "pos": "-1.5", "avgPx": "65000.12345", "upl": "-0.75", "ccy": "USDT"},
           {"instId": "XRP-USDT-SWAP", "pos": "10", "avgPx": "1", "upl": "0"}]
    assert parse.latest_ns(bal) == 1_000_000 and parse.latest_ns(
        [{"uTime": "1654084353264", "details": [{"uTime": "1654084353265"}]}, {"uTime": ""}]) == 1654084353265 * 10**6
    (p,) = parse.positions(pos, reg)
    assert (p.size, p.entry_px, p.unrealized_pnl, p.pnl_scale, p.pnl_asset) == (-150, 650001, -75, 2, "USDT")


def test_reply_outcomes_by_cause():
    ok = orjson.dumps({"code": "0", "msg": "", "data": [{"ordId": "1", "sCode": "0"}]})
    assert answer(200, ok, "x") == [{"ordId": "1", "sCode": "0"}]
    failed = orjson.dumps({"code": "1", "msg": "All operations failed",
                           "data": [{"sCode": "51008", "sMsg": "Insufficient USDT"}]})
    with pytest.raises(OkxRefused) as e:
        answer(200, failed, "x")
    assert (e.value.code, e.value.msg) == (51008, "Insufficient USDT")
    with pytest.raises(OkxRefused) as e:
        answer(401, orjson.dumps({"code": "50113", "msg": "Invalid Sign", "data": []}), "x")
    assert e.value.code == 50113
    for raw, status in ((orjson.dumps({"code": "50004", "msg": "API endpoint request timeout"}), 200),
                        (orjson.dumps({"code": "1", "data": [{"sCode": "50026", "sMsg": "System error"}]}), 200),
                        (b"<html>bad gateway</html>", 502), (b"not json", 200)):
        with pytest.raises(PeerGone, match="outcome unknown"):
            answer(status, raw, "x")


def test_signatures_follow_the_documented_prehash():
    secret = b"22582BD0CFF14C41EDBF1AB98506286D"     # docs "REST Authentication" example key
    ts = iso_ms(1607418537715)
    assert ts == "2020-12-08T09:08:57.715Z"           # the docs' example timestamp
    pre = ts + "GET" + "/api/v5/account/balance?ccy=BTC"
    assert sign(secret, pre) == base64.b64encode(hmac.new(secret, pre.encode(), hashlib.sha256).digest()).decode()
    a = login_args("k", secret, "p", 1538054050)
    assert a["timestamp"] == "1538054050"
    assert a["sign"] == sign(secret, "1538054050GET/users/self/verify")
    assert private_url("wss://ws.okx.com:8443") == "wss://ws.okx.com:8443/ws/v5/private"
    assert private_url("ws://127.0.0.1:9/ws/v5/private") == "ws://127.0.0.1:9/ws/v5/private"


def test_a_plain_registry_gives_spot_only_specs():
    from events import Instrument
    reg = Registry([Instrument("BTC-USDT", px_scale=1, sz_scale=8)])
    reg.map_venue(Provider.OKX, "BTC-USDT", "BTC-USDT")
    from venues.okx.trading.adapter import OkxAdapter
    a = OkxAdapter("http://127.0.0.1:9", "ws://127.0.0.1:9", "k", "s", reg, lambda e: None, passphrase="p")
    assert a.registry.spec("BTC-USDT").ct == 1 and a.client_id_form == "alnum"


def test_the_passphrase_comes_from_the_environment_or_is_the_simulators_on_loopback(monkeypatch):
    from core.config import ConfigError
    from execution.__main__ import SIM_PASSPHRASE, load_passphrase
    from venues.okx.trading.adapter import SIM_PASSPHRASE as ADAPTER_SIM, passphrase_from_env
    monkeypatch.delenv("MELTICA_OKX_API_PASSPHRASE", raising=False)
    assert load_passphrase("http://127.0.0.1:9", "MELTICA_OKX") == SIM_PASSPHRASE == ADAPTER_SIM
    assert passphrase_from_env("http://localhost:9") == SIM_PASSPHRASE
    with pytest.raises(ConfigError, match="MELTICA_OKX_API_PASSPHRASE"):
        load_passphrase("https://openapi.okx.com", "MELTICA_OKX")
    with pytest.raises(ValueError, match="MELTICA_OKX_API_PASSPHRASE"):
        passphrase_from_env("https://openapi.okx.com")
    monkeypatch.setenv("MELTICA_OKX_API_PASSPHRASE", "pp")
    assert load_passphrase("https://openapi.okx.com", "MELTICA_OKX") == passphrase_from_env("https://x") == "pp"


def test_a_ws_error_event_answering_a_request_is_a_refusal():
    with pytest.raises(OkxRefused) as e:
        answer(200, orjson.dumps({"id": "o1", "event": "error", "code": "60011", "msg": "Please log in",
                                  "connId": "a"}), "ws order")
    assert (e.value.code, e.value.msg) == (60011, "Please log in")
