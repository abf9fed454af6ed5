"""`make run ARGS="--hosts 2"`: the pipeline as two hosts on this machine, joined only by NATS.

    venues host  (run <id>-venues, run/<id>-venues/)   simulator, ingest --venue X,
                                                        bridge md-out (md.<venue> rings -> NATS)
    trading host (run <id>, run/<id>/)                  bridge md-in (NATS -> md.<venue> rings),
                                                        execution, dispatch, strategy.demo,
                                                        the collector, metrics and the live view
    NATS         a nats-server from the wheel (JetStream on), store in run/<id>/nats/

Each host has its own shared-memory namespace and run directory: dispatch on the
trading host reads `md.<venue>` rings that md-in writes, exactly as if ingest ran
there. Execution talks to the venue (the simulator's HTTP and WebSocket) directly, as
it would on a real machine near its keys. Real machines: deploy/hosts/README.md.
"""

from __future__ import annotations

from bridge.servers import NatsNode
from channels.names import md_ring
from core.run import RunContext

from .launcher import Program
from .pipeline import Pipeline


class VenueHost(Pipeline):
    """The venues host: the simulator, ingest, and md-out; no collector, no view."""

    def __init__(self, *args, nats_url: str, **kw):
        super().__init__(*args, **kw)
        self.nats_url = nats_url

    def programs(self) -> list[Program]:
        progs = [p for p in super().programs() if p.name.startswith("ingest.")]
        rings = [a for v in self.venues for a in ("--ring", md_ring(v))]
        progs.append(Program("bridge.md-out", "bridge", ["md-out", "--nats", self.nats_url, *rings]))
        return progs

    def start(self) -> None:
        if not self.live_feeds:
            self.launcher.start(self._venue_program())
            self.endpoints = self._wait_endpoints()
        for program in self.programs():
            self.launcher.start(program)


class TradingHost(Pipeline):
    """The trading host, and the owner of the venues host and the NATS server of the run."""

    runs_simulator = False

    def __init__(self, cfg: dict, ctx: RunContext, **kw):
        super().__init__(cfg, ctx, **kw)
        self.nats = NatsNode.start(ctx.path("nats", "store"))
        venue_id = f"{ctx.run_id}-venues"
        self.venue_ctx = RunContext(venue_id, ctx.run_dir.parent / venue_id)
        self.venue_host = VenueHost(cfg, self.venue_ctx, nats_url=self.nats.url, **kw)

    def programs(self) -> list[Program]:
        rings = [a for v in self.venues for a in ("--ring", md_ring(v))]
        md_in = Program("bridge.md-in", "bridge", ["md-in", "--nats", self.nats.url, *rings])
        return [md_in, *(p for p in super().programs() if not p.name.startswith("ingest."))]

    def start(self) -> None:
        self.venue_host.start()
        self.endpoints = self.venue_host.endpoints
        super().start()

    def poll(self) -> list[str]:
        return self.venue_host.poll() + super().poll()

    def failure(self) -> str | None:
        reasons = [r for r in (self.venue_host.failure(), super().failure()) if r]
        return "; ".join(reasons) or None

    def unexpected_exits(self) -> list[str]:
        return self.venue_host.unexpected_exits() + super().unexpected_exits()

    def stop(self) -> dict:
        codes = super().stop()
        codes.update({f"venues/{k}": v for k, v in self.venue_host.stop().items()})
        self.nats.stop()
        self.nats.remove_store()
        return codes

    def close(self) -> None:
        super().close()
        self.venue_host.close()
