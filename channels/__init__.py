"""The contract between Meltica's processes: names, endpoints, the journal, control messages.

    names      every ring name and endpoint of a run, spelled once
    journal    the exec journal's format and its reader (the writer is execution's)
    messages   typed control requests, the one reply shape, the error codes, the bounds
    identity   consumer keys: who may speak for a consumer name (the decision is there)
    limits     per-consumer request budgets
    server     the server end of a control channel: a ROUTER that never drops a reply
               silently, and what happens to bad input (counter, bounded dead letter)

Processes (dispatch, execution) and the consumer SDK import this package; it imports
`events`, numpy, orjson and pyzmq only, never a process package.
"""

from .identity import Keys, consumer_key
from .journal import JournalError, JournalReader
from .messages import (CODES, DISPATCH_COMMANDS, EXECUTION_COMMANDS, MAX_FRAME_BYTES, MAX_MSG_BYTES,
                       ProtocolError, ack, parse, reply)
from .names import (EXEC_RING, check_local, consumer_ring, dispatch_endpoint, execution_endpoint,
                    journal_path, md_ring, md_venue)

__all__ = ["CODES", "DISPATCH_COMMANDS", "EXECUTION_COMMANDS", "EXEC_RING", "JournalError", "JournalReader",
           "Keys", "MAX_FRAME_BYTES", "MAX_MSG_BYTES", "ProtocolError", "ack", "check_local", "consumer_key",
           "consumer_ring", "dispatch_endpoint", "execution_endpoint", "journal_path", "md_ring", "md_venue",
           "parse", "reply"]
