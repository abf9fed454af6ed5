"""Meltica's error tree. Every package of ours (but the generic `shm`) raises these.

    MelticaError
    ├── BadInput          the input was bad: malformed frame, bad decimal, unknown symbol
    │   ├── DecimalError  a decimal string that is malformed, too precise or too large
    │   └── UnknownInstrument
    ├── PeerGone          the other side went away: dead process, closed socket, timeout
    ├── Closed            we closed it: use of a closed component
    ├── VenueRefused      the venue said no: order rejected, request refused
    ├── Desync            our state no longer matches the venue's: gap, bad checksum
    └── InUse             another live process already holds it: a ring's writer, a run's execution

Raised elsewhere, under these roots: ConfigError (core.config, a BadInput), UnknownSymbols
(venues.base, a BadInput), ProtocolError (channels.messages, a BadInput), BadLine
(ingest.recording, a BadInput), CannotConnect (ingest.probe, a PeerGone), NotSent and
BinanceRefused (the Binance trading adapter), RunDirError and JournalError (MelticaError),
RingInUse (ingest.process) and AlreadyRunning (execution.process), both InUse. The
generic `shm` has its own root, RingError, as it imports nothing of ours.
"""


class MelticaError(Exception):
    """Root of every error Meltica raises on purpose."""


class BadInput(MelticaError):
    """The input was bad (the sender's fault): say which input and why."""


class DecimalError(BadInput, ValueError):
    """A decimal string that cannot be represented exactly at the scale asked for."""


class UnknownInstrument(BadInput, KeyError):
    """No instrument of that id, symbol or venue symbol is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PeerGone(MelticaError):
    """The other side went away: a dead process, a closed connection, a silent peer."""


class Closed(MelticaError):
    """This component was closed by us and cannot be used any more."""


class VenueRefused(MelticaError):
    """The venue refused the request (order rejected, bad request, rate limit)."""


class Desync(MelticaError):
    """Our copy of venue state diverged: sequence gap, checksum mismatch, crossed book."""


class InUse(MelticaError):
    """Another live process already holds this: say what and who."""
