"""The Meltica application on top of the processes: `python -m meltica run` (what `make run`
does) and `python -m meltica collect`.

    pipeline    the programs of one run, from a configuration
    hosts       `--hosts 2`: the pipeline as two hosts on this machine, joined only by NATS
    launcher    start, watch, restart and stop them; why each one exited
    runconfig   every table of a run's config checked before anything starts
    monitor     the operator's own consumer (market data only) for the view and the report
    liveview    the live terminal view; report: the end-of-run JSON report
    collector   the run's telemetry collector; metrics: its Prometheus endpoint
    symbols     instrument ids back to symbols, for displays

The foundation every process stands on (run context, telemetry, DLQ, signals, config)
is `core`, below the processes; nothing below imports this package.
"""
