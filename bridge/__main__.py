"""python -m bridge: move a run's rings and channels between hosts over NATS.

    python -m bridge server   --store DIR [--cluster 3]        NATS from the wheel, on loopback (Ctrl-C stops)
    python -m bridge exec-out --nats URL[,URL..] [--replicas 3]   execution host: exec journal -> JetStream
    python -m bridge exec-in  --nats URL[,URL..] [--consumer NAME]   consumer host: JetStream -> journal + exec ring
    python -m bridge md-out   --nats URL --ring md.VENUE [...] [--batch N]   rings -> core NATS (raw batches)
    python -m bridge md-in    --nats URL [--ring md.VENUE ...]    core NATS -> local rings of the same names
    python -m bridge ctl-serve  --nats URL [--target dispatch]    execution (dispatch) host: remote consumers' requests
    python -m bridge ctl-expose --nats URL [--consumer NAME] [--target dispatch]
                                                                  consumer host: the execution (dispatch) endpoint, via NATS
    python -m bridge config --out FILE --consumer NAME [...]     a server config: users and permissions

Every program that connects takes --user and --password-file (one line) when the
server requires users (`config`).

The run (ring namespace, run directory) comes from MELTICA_RUN / MELTICA_RUN_DIR, as
for every program of a run. SIGTERM / Ctrl-C stops cleanly; a SIGKILL loses nothing
(the journals on both hosts are the cursors).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time

import orjson

from core.config import EX_CONFIG
from core.run import RunContext

from .md import MAX_BATCH


_AUTH: dict = {}  # user, password, inbox_prefix of this process's NATS connection


def _servers(text: str) -> list[str]:
    return [u.strip() for u in text.split(",") if u.strip()]


async def _run_until_signal(worker) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.run(stop)


async def _run_ctl(worker, args) -> None:
    from .execs import connect
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    nc = await connect(args.nats, f"bridge-{args.cmd}", pending_size=4 << 20, **_AUTH)
    try:
        await worker.run(nc, stop)
    finally:
        await nc.close()


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bridge", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("server", help="start nats-server(s) from the wheel on loopback")
    sv.add_argument("--store", required=True, help="directory for configs, logs and JetStream stores")
    sv.add_argument("--cluster", type=int, default=1, help="nodes (1: one node; 3: a cluster with routes)")
    for name, text in (("exec-out", "execution host: exec journal -> JetStream"),
                       ("exec-in", "consumer host: JetStream -> local journal and exec ring")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--nats", required=True, type=_servers, help="server URLs, comma-separated")
        p.add_argument("--stream", default="EXEC")
        p.add_argument("--subject", default="exec.reports", help="subject prefix (reports: PREFIX.<consumer>; ACCOUNT records: PREFIX.=account)")
        if name == "exec-out":
            p.add_argument("--replicas", type=int, default=1, help="stream replicas when it is created")
        else:
            p.add_argument("--consumer", help="read only this consumer's reports and the ACCOUNT records "
                                              "(its NATS user; default: every consumer's, as user host)")
    for name, text in (("md-out", "sending host: rings -> core NATS, raw record batches"),
                       ("md-in", "receiving host: core NATS -> local rings of the same names and layout")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--nats", required=True, type=_servers, help="server URLs, comma-separated")
        p.add_argument("--ring", action="append", default=[], required=name == "md-out",
                       help="ring name (md.<venue>, consumer.<name>.md); repeat" +
                            ("" if name == "md-out" else "; default: every ring sent"))
        p.add_argument("--prefix", default="meltica.ring", help="subject prefix")
        if name == "md-in":
            p.add_argument("--capacity", type=int, default=16384, help="records per local ring")
        else:
            p.add_argument("--batch", type=int, default=MAX_BATCH, help=f"records per message at most "
                                                                       f"(default and limit {MAX_BATCH})")
    for name, text in (("ctl-serve", "execution host: remote consumers' requests -> the local execution endpoint"),
                       ("ctl-expose", "consumer host: the run's execution endpoint, answered through NATS")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--nats", required=True, type=_servers, help="server URLs, comma-separated")
        p.add_argument("--prefix", default="meltica.ctl", help="subject prefix")
        p.add_argument("--target", action="append", choices=("execution", "dispatch"),
                       help="the endpoint carried: execution (orders; the default), dispatch (subscriptions, "
                            "trading switch, and the consumer's ring); repeat for both")
        if name == "ctl-expose":
            p.add_argument("--consumer", help="the one consumer this bridge speaks for (its NATS user)")
    cf = sub.add_parser("config", help="write a nats-server config with users per role and per consumer")
    cf.add_argument("--out", required=True, help="config file (passwords go to FILE.passwords.json)")
    cf.add_argument("--consumer", action="append", default=[], help="a remote consumer's name; repeat")
    cf.add_argument("--listen", default="127.0.0.1:4222")
    cf.add_argument("--store", default="nats-store", help="JetStream store directory")
    cf.add_argument("--tls-cert"), cf.add_argument("--tls-key"), cf.add_argument("--tls-ca")
    for p in sub.choices.values():
        if any(a.dest == "nats" for a in p._actions):
            p.add_argument("--user", help="NATS user (see `config`)")
            p.add_argument("--password-file", help="file holding the user's password")
    return ap


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # bad arguments: a configuration error, not restarted (deploy/)
        if exc.code not in (0, None):
            return EX_CONFIG
        raise
    if getattr(args, "user", None):
        with open(args.password_file) as f:
            _AUTH.update(user=args.user, password=f.read().strip())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    if args.cmd == "config":
        from .config import write
        tls = {"cert": args.tls_cert, "key": args.tls_key, "ca": args.tls_ca} if args.tls_cert else None
        write(args.out, args.consumer, listen=args.listen, store=args.store, tls=tls)
        print(orjson.dumps({"config": args.out, "passwords": args.out + ".passwords.json"}).decode())
        return 0

    if args.cmd == "server":
        from .servers import NatsCluster, NatsNode
        srv = NatsNode.start(args.store) if args.cluster == 1 else NatsCluster.start(args.store, nodes=args.cluster)
        urls = [srv.url] if args.cluster == 1 else srv.urls
        print(orjson.dumps({"nats": urls}).decode(), flush=True)
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        try:
            while not stop:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            srv.stop()
        return 0

    ctx = RunContext.from_env()
    if args.cmd in ("ctl-serve", "ctl-expose"):
        from .config import inbox_prefix
        from .ctl import CtlExpose, CtlServe
        if args.cmd == "ctl-serve":
            worker = CtlServe(ctx, prefix=args.prefix, targets=args.target or ["execution"])
        else:
            worker = CtlExpose(ctx, prefix=args.prefix, consumer=args.consumer, targets=args.target or ["execution"])
            if args.consumer:
                _AUTH["inbox_prefix"] = inbox_prefix(args.consumer)
        asyncio.run(_run_ctl(worker, args))
        print(orjson.dumps(worker.statistics()).decode(), file=sys.stderr, flush=True)
        return 0
    if args.cmd in ("md-out", "md-in"):
        from .md import MdIn, MdOut, run_in, run_out
        from .wire import WireConnection
        stop = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.append(1))

        def connect():
            return WireConnection.connect(args.nats, name=f"bridge-{args.cmd}", user=_AUTH.get("user"),
                                          password=_AUTH.get("password"))
        if args.cmd == "md-out":
            worker = MdOut(ctx.namespace, args.ring, prefix=args.prefix, batch=args.batch)
            run_out(worker, connect, lambda: bool(stop))
        else:
            worker = MdIn(ctx.namespace, prefix=args.prefix, capacity=args.capacity)
            run_in(worker, connect, lambda: bool(stop), args.ring or None)
        print(orjson.dumps(worker.statistics()).decode(), file=sys.stderr, flush=True)
        return 0

    from .exec_in import ExecIn
    from .exec_out import ExecOut
    if args.cmd == "exec-out":
        worker = ExecOut(ctx, args.nats, stream=args.stream, subject=args.subject, replicas=args.replicas,
                         auth=_AUTH)
    else:
        if args.consumer:
            from .config import inbox_prefix
            _AUTH["inbox_prefix"] = inbox_prefix(args.consumer)
        worker = ExecIn(ctx, args.nats, stream=args.stream, subject=args.subject, auth=_AUTH, consumer=args.consumer)
    from .execs import StreamMismatch
    try:
        asyncio.run(_run_until_signal(worker))
    except StreamMismatch as exc:  # a configuration error: restarting cannot fix it (deploy/)
        print(f"bridge {args.cmd}: {exc}", file=sys.stderr, flush=True)
        return EX_CONFIG
    print(orjson.dumps(worker.statistics()).decode(), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
