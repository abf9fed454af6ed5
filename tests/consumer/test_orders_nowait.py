"""Order entry that does not wait: `*_nowait` requests, `poll_replies`, `pending`.

Two kinds of peer: a stub ROUTER in this process (answers when, and in the order, the
test says; or never), and the real `python -m execution` on the simulator.
"""

from __future__ import annotations

import threading

import orjson
import pytest
import zmq

from consumer.orders import OrderClient
from events import PeerGone
from tests.execution.conftest import execution, sim  # noqa: F401  (fixtures)
from tests.execution.harness import Consumer, client

pytestmark = pytest.mark.timeout(60)
SYM = "BTC-USDT"


class Stub:
    """A ROUTER where execution's control socket would be; the test answers for it."""

    def __init__(self, endpoint: str):
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)

    def take(self) -> tuple[bytes, dict]:
        """The next request (its envelope, its body); fails after 5 s."""
        assert self.sock.poll(5000), "no request reached the stub"
        peer, payload = self.sock.recv_multipart()
        return peer, orjson.loads(payload)

    def answer(self, peer: bytes, req: dict, **body) -> None:
        self.sock.send_multipart([peer, orjson.dumps({"type": "result", "request_id": req["request_id"],
                                                      "ok": True, **body})])

    def close(self) -> None:
        self.sock.close(0)


@pytest.fixture
def endpoint(run_ctx):
    return f"ipc://{run_ctx.run_dir}/stub.ctl"


@pytest.fixture
def stub(endpoint):
    s = Stub(endpoint)
    try:
        yield s
    finally:
        s.close()


def stub_client(run_ctx, endpoint, timeout_s=5.0, trading_enabled=True) -> OrderClient:
    return OrderClient(Consumer("c1", trading_enabled), run=run_ctx, endpoint=endpoint, timeout_s=timeout_s)


def collect_replies(oc: OrderClient, n: int, timeout_s: float = 10.0) -> list[dict]:
    got: list[dict] = []
    while len(got) < n:
        more = oc.poll_replies(timeout_s=timeout_s)
        assert more, f"only {len(got)} of {n} answers within {timeout_s}s: {got}"
        got += more
    return got


# -- against a stub -------------------------------------------------------------------------

def test_nowait_orders_return_before_any_answer_and_answers_match_by_request_id(run_ctx, endpoint, stub):
    with stub_client(run_ctx, endpoint) as oc:
        coids = [f"nw-{i}" for i in range(5)]
        rids = {oc.submit_limit_nowait(c, SYM, "buy", "0.001", "60000"): c for c in coids}
        assert oc.pending == frozenset(coids), "nothing was answered, yet every call returned"
        assert oc.poll_replies() == []
        assert oc.flush(timeout_s=10) == 0  # the first may have waited for the connection
        taken = [stub.take() for _ in coids]
        assert [req["client_order_id"] for _, req in taken] == coids, "sent in order"
        for peer, req in reversed(taken):  # answered in the opposite order
            stub.answer(peer, req, status="accepted", order={"client_order_id": req["client_order_id"]})
        got = collect_replies(oc, len(coids))
        assert [a["client_order_id"] for a in got] == coids[::-1]
        assert all(rids[a["request_id"]] == a["client_order_id"] == a["order"]["client_order_id"] for a in got)
        assert all(a["status"] == "accepted" and a["cmd"] == "new_order" and not a["late"] for a in got)
        assert oc.pending == frozenset()


def test_a_nowait_request_without_an_answer_is_reported_unknown_and_a_late_answer_still_comes(
        run_ctx, endpoint, stub):
    with stub_client(run_ctx, endpoint, timeout_s=0.2) as oc:
        oc.submit_limit_nowait("slow-1", SYM, "buy", "0.001", "60000")
        assert oc.flush(timeout_s=10) == 0
        peer, req = stub.take()
        [unknown] = oc.poll_replies(timeout_s=10)  # returns when the 0.2 s run out
        assert (unknown["client_order_id"], unknown["status"], unknown["code"]) == ("slow-1", "unknown", "no_answer")
        assert not unknown["ok"] and "query it, or send it again" in unknown["reason"]
        assert oc.pending == frozenset()
        stub.answer(peer, req, status="accepted")
        [late] = oc.poll_replies(timeout_s=10)
        assert (late["client_order_id"], late["status"], late["late"]) == ("slow-1", "accepted", True)
        assert oc.statistics()["unknown"] == 1 and oc.statistics()["late"] == 1


def test_a_blocking_call_that_times_out_keeps_the_answers_of_nowait_requests(run_ctx, endpoint, stub):
    with stub_client(run_ctx, endpoint, timeout_s=0.3) as oc:
        oc.submit_limit_nowait("a-1", SYM, "buy", "0.001", "60000")
        assert oc.flush(timeout_s=10) == 0
        peer, req = stub.take()
        stub.answer(peer, req, status="accepted")  # waits in the client's socket
        with pytest.raises(PeerGone, match="query"):
            oc.query("a-1")  # the stub never answers this one; it reads a-1's answer meanwhile
        assert stub.take()[1]["cmd"] == "query"
        [kept] = oc.poll_replies()
        assert (kept["client_order_id"], kept["status"]) == ("a-1", "accepted")


def test_a_nowait_request_with_no_execution_to_take_it_is_never_sent(run_ctx, endpoint):
    with stub_client(run_ctx, endpoint, timeout_s=0.2) as oc:
        oc.submit_limit_nowait("early", SYM, "buy", "0.001", "60000")
        [a] = oc.poll_replies(timeout_s=10)
        assert (a["client_order_id"], a["status"], a["code"]) == ("early", "suppressed", "execution_unreachable")
        oc.timeout_s = 10.0
        seen: list[str] = []
        stop = threading.Event()
        late = threading.Thread(target=accept_all, args=(endpoint, seen, stop))  # execution comes up late
        late.start()
        try:
            oc.submit_limit_nowait("b", SYM, "buy", "0.001", "60000")
            oc.submit_limit_nowait("c", SYM, "buy", "0.001", "60000")
            got = collect_replies(oc, 2)
        finally:
            stop.set()
            late.join(10)
        assert [a["client_order_id"] for a in got] == ["b", "c"]
        assert seen == ["b", "c"], "the request that was reported unsent never reached execution"


def accept_all(endpoint: str, seen: list, stop: threading.Event) -> None:
    """A stub execution in a thread: answers every request "accepted", notes its client order id."""
    s = Stub(endpoint)
    try:
        while not stop.is_set():
            if s.sock.poll(20):
                peer, req = s.take()
                seen.append(req["client_order_id"])
                s.answer(peer, req, status="accepted")
    finally:
        s.close()


def test_nowait_orders_are_suppressed_while_the_trading_switch_is_off(run_ctx, endpoint, stub):
    with stub_client(run_ctx, endpoint, trading_enabled=False) as oc:
        rid = oc.submit_market_nowait("off-1", SYM, "buy", "0.001")
        [a] = oc.poll_replies()
        assert (a["request_id"], a["status"], a["code"]) == (rid, "suppressed", "trading_disabled")
        assert oc.pending == frozenset() and oc.suppressed == 1


# -- against execution ----------------------------------------------------------------------

@pytest.mark.multiprocess
def test_nowait_orders_are_all_answered_by_execution(run_ctx, sim, execution):  # noqa: F811
    execution()
    with client(run_ctx) as oc:
        coids = [f"many-{i}" for i in range(20)]
        for c in coids:
            oc.submit_limit_nowait(c, SYM, "buy", "0.001", "60000")
        got = collect_replies(oc, len(coids))
        assert sorted(a["client_order_id"] for a in got) == sorted(coids)
        assert {a["status"] for a in got} == {"accepted"}
        assert oc.pending == frozenset()
        assert oc.query("many-0")["order"]["client_order_id"] == "many-0"


@pytest.mark.multiprocess
def test_a_blocking_call_between_nowait_orders_loses_none_of_their_answers(run_ctx, sim, execution):  # noqa: F811
    execution()
    with client(run_ctx) as oc:
        coids = [f"mix-{i}" for i in range(10)]
        for c in coids:
            oc.submit_limit_nowait(c, SYM, "buy", "0.001", "60000")
        q = oc.query(coids[-1])  # execution answers in order: every order's answer came before this one
        assert q["status"] == "ok" and q["order"]["client_order_id"] == coids[-1]
        got = oc.poll_replies()  # no waiting: they were kept while query waited
        assert [a["client_order_id"] for a in got] == coids
        assert {a["status"] for a in got} == {"accepted"}


@pytest.mark.multiprocess
def test_the_same_client_order_id_sent_twice_nowait_is_accepted_once_and_duplicate_once(
        run_ctx, sim, execution):  # noqa: F811
    execution()
    with client(run_ctx) as oc:
        oc.submit_limit_nowait("twice", SYM, "buy", "0.001", "60000")
        oc.submit_limit_nowait("twice", SYM, "buy", "0.001", "60000")
        assert oc.pending == frozenset({"twice"})
        got = collect_replies(oc, 2)
        assert [a["status"] for a in got] == ["accepted", "duplicate"]
        assert got[1]["order"]["client_order_id"] == "twice"


@pytest.mark.multiprocess
def test_hello_nowait_learns_the_consumer_id(run_ctx, sim, execution):  # noqa: F811
    execution()
    with OrderClient(Consumer("c-hello"), run=run_ctx) as oc:
        oc.hello_nowait()
        assert oc.consumer_id is None and oc.pending == frozenset(), "pending lists client order ids only"
        [a] = collect_replies(oc, 1)
        assert (a["cmd"], a["status"], a["client_order_id"]) == ("hello", "ok", None)
        assert oc.consumer_id == a["consumer_id"] > 0


def test_a_busy_answer_sends_the_request_again_and_only_its_real_answer_is_handed_out(run_ctx, endpoint, stub):
    with stub_client(run_ctx, endpoint) as oc:
        oc.submit_limit_nowait("b-1", SYM, "buy", "0.001", "60000")
        assert oc.flush(timeout_s=10) == 0
        peer, req = stub.take()
        stub.sock.send_multipart([peer, orjson.dumps({"type": "result", "request_id": req["request_id"], "ok": False,
                                                      "code": "busy", "status": "busy", "reason": "read first"})])
        assert oc.poll_replies(timeout_s=0.2) == []  # not an answer: the request goes again
        peer, again = stub.take()
        assert again == req, "the same request, byte for byte (idempotent by client_order_id)"
        stub.answer(peer, again, status="accepted")
        [a] = collect_replies(oc, 1)
        assert (a["client_order_id"], a["status"]) == ("b-1", "accepted")
        assert oc.statistics()["busy"] == 1 and oc.statistics()["sent"] == 2


def test_every_request_carries_the_consumers_key_from_the_run_directory(run_ctx, endpoint, stub):
    from channels.identity import consumer_key

    with stub_client(run_ctx, endpoint) as oc:
        oc.query_nowait("k-1")
        assert oc.flush(timeout_s=10) == 0
        _, req = stub.take()
        assert req["consumer"] == "c1" and req["key"] == consumer_key(run_ctx.run_dir, "c1")
