"""python -m bridge: move a run's rings and channels between hosts over NATS.

    python -m bridge server   --store DIR [--cluster 3]        NATS from the wheel, on loopback (Ctrl-C stops)
    python -m bridge exec-out --nats URL[,URL..] [--replicas 3]   execution host: exec journal -> JetStream
    python -m bridge exec-in  --nats URL[,URL..]                  consumer host: JetStream -> journal + exec ring

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

from meltica.run import RunContext


def _servers(text: str) -> list[str]:
    return [u.strip() for u in text.split(",") if u.strip()]


async def _run_until_signal(worker) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.run(stop)


def main(argv: list[str] | None = None) -> int:
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
        p.add_argument("--subject", default="exec.reports")
        if name == "exec-out":
            p.add_argument("--replicas", type=int, default=1, help="stream replicas when it is created")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

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

    from .execs import ExecIn, ExecOut
    ctx = RunContext.from_env()
    if args.cmd == "exec-out":
        worker = ExecOut(ctx, args.nats, stream=args.stream, subject=args.subject, replicas=args.replicas)
    else:
        worker = ExecIn(ctx, args.nats, stream=args.stream, subject=args.subject)
    asyncio.run(_run_until_signal(worker))
    print(orjson.dumps(worker.statistics()).decode(), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
