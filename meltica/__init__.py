"""Meltica's umbrella package: the run context, telemetry and the dead-letter queue,
shared by every process (ingest, dispatch, execution, consumers), and the `meltica`
command line that starts the whole pipeline.
"""
