"""The business-free foundation every Meltica process stands on.

    run         the run context: run id (the shared-memory namespace), run directory (private)
    config      one TOML file configures a run; each program reads its table as flag defaults
    telemetry   ops-only counters, gauges and events on a ZeroMQ PUB socket (LM-08)
    dlq         the dead-letter queue: bad input and dropped data, kept for operators
    signals     stop on SIGTERM / SIGINT without deadlocking

It imports `shm` and `events` only; the processes (ingest, dispatch, execution), the
consumer SDK and the application (`meltica`) import it.
"""
