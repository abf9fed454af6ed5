"""The SDK's amend: the request it sends is the typed `amend` of channels.messages, and its
answer comes back in the one reply shape (blocking, and through poll_replies)."""

from __future__ import annotations

import threading

import orjson
import pytest

from channels import messages as M

from .test_orders_nowait import collect_replies, endpoint, stub, stub_client  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(30)


def test_amend_sends_only_the_fields_given_and_returns_the_reply(run_ctx, endpoint, stub):  # noqa: F811
    def serve():
        peer, req = stub.take()
        served.append(req)
        stub.answer(peer, req, cmd="amend", code=None, reason="", status="accepted",
                    order={"client_order_id": "a-1", "qty": "0.002"})

    served: list[dict] = []
    with stub_client(run_ctx, endpoint) as oc:
        t = threading.Thread(target=serve)
        t.start()
        r = oc.amend("a-1", qty="0.002")
        t.join()
    [req] = served
    parsed = M.parse(orjson.dumps(req), M.EXECUTION_COMMANDS)
    assert isinstance(parsed, M.Amend)
    assert (parsed.client_order_id, parsed.qty, parsed.price, parsed.consumer) == ("a-1", "0.002", None, "c1")
    assert "price" not in req
    assert (r["ok"], r["status"], r["order"]["qty"]) == (True, "accepted", "0.002")


def test_amend_nowait_answers_through_poll_replies(run_ctx, endpoint, stub):  # noqa: F811
    with stub_client(run_ctx, endpoint) as oc:
        rid = oc.amend_nowait("a-2", price="29990")
        assert oc.pending == frozenset({"a-2"})
        assert oc.flush(timeout_s=10) == 0
        peer, req = stub.take()
        assert (req["cmd"], req["price"], "qty" in req) == ("amend", "29990", False)
        stub.answer(peer, req, cmd="amend", status="rejected", code="order_busy", reason="in flight")
        [a] = collect_replies(oc, 1)
        assert (a["request_id"], a["cmd"], a["client_order_id"], a["status"], a["code"]) == \
            (rid, "amend", "a-2", "rejected", "order_busy")


def test_an_amend_request_is_typed_and_bounded():
    ok = M.parse(b'{"cmd":"amend","request_id":3,"consumer":"c1","key":"' + b"0" * 32 +
                 b'","client_order_id":"x","qty":"1.5","price":"2"}', M.EXECUTION_COMMANDS)
    assert ok == M.Amend(request_id=3, consumer="c1", key="0" * 32, client_order_id="x", qty="1.5", price="2")
    with pytest.raises(M.ProtocolError, match="takes no field 'side'"):
        M.parse(b'{"cmd":"amend","request_id":3,"consumer":"c1","key":"' + b"0" * 32 +
                b'","client_order_id":"x","side":"buy"}', M.EXECUTION_COMMANDS)
    with pytest.raises(M.ProtocolError, match="needs client_order_id"):
        M.parse(b'{"cmd":"amend","request_id":3,"consumer":"c1","key":"' + b"0" * 32 + b'"}',
                M.EXECUTION_COMMANDS)
    assert M.CODES["order_busy"] not in {v for k, v in M.CODES.items() if k != "order_busy"}
