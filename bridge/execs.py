"""Exec reports between hosts, nothing lost: journal -> JetStream -> journal + `exec` ring.

Execution host: `bridge.exec_out.ExecOut` reads the exec journal (`channels.journal`, the
source of truth) into the JetStream stream `<stream>` (subjects `<subject>.>`). Consumer
host: `bridge.exec_in.ExecIn` reads the stream into a local journal and lossless `exec`
ring, so the consumer SDK there resumes from its exec_seq unchanged. Each module says how.

Here, what both sides (and `bridge.config`, which writes the permissions) agree on: the
stream and subject names, the subject token of ACCOUNT records, the JetStream consumer
names of a consumer's bridge, making the stream, connecting and retrying.

Both sides run in one asyncio loop; journal reads and ring writes are non-blocking calls in it.
"""

from __future__ import annotations

import asyncio
import logging
import time

import nats
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from events.errors import MelticaError

log = logging.getLogger("bridge.exec")

STREAM = "EXEC"
SUBJECT = "exec.reports"
ACCOUNT_TOKEN = "=account"  # the subject token of ACCOUNT records: never a consumer's (bridge.exec_out)


async def connect(servers: list[str], name: str, **kw) -> nats.NATS:
    """A client that reconnects forever (a NATS node may die under us)."""
    return await nats.connect(servers=servers, name=name, max_reconnect_attempts=-1,
                              reconnect_time_wait=0.2, connect_timeout=2, **kw)


class StreamMismatch(MelticaError):
    """The stream exists with other subjects (made by an older bridge, or for something else)."""


async def ensure_stream(js, stream: str = STREAM, subject: str = SUBJECT, replicas: int = 1) -> None:
    """Create the stream of exec reports (`<subject>.>`) unless it exists (file storage, no limits);
    StreamMismatch if it exists without that subject: reports would go nowhere."""
    try:
        info = await js.stream_info(stream)
        subjects = list(info.config.subjects or [])
        if f"{subject}.>" not in subjects:
            raise StreamMismatch(f"stream {stream} has subjects {subjects}; exec reports go on {subject}.<consumer>: "
                                 f"delete the stream (it is a copy: the journal is the source of truth) "
                                 f"or use another --stream / --subject")
    except NotFoundError:
        await js.add_stream(StreamConfig(name=stream, subjects=[f"{subject}.>"], num_replicas=replicas,
                                         duplicate_window=600.0))


def consumer_name(consumer: str) -> str:
    """The JetStream consumer through which consumer `consumer`'s bridge reads its reports."""
    return f"exec-in-{consumer}"


def account_consumer_name(consumer: str) -> str:
    """The JetStream consumer through which consumer `consumer`'s bridge reads the ACCOUNT records
    (`exec-acct-` and `exec-in-` differ before the name: no name makes one the other)."""
    return f"exec-acct-{consumer}"


async def retry(what: str, fn, *, stop: asyncio.Event | None = None, timeout_s: float = 60.0):
    """`await fn()` until it succeeds (NATS errors while a cluster elects a leader)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            return await fn()
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                raise
            log.warning("%s: %s; retrying", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
