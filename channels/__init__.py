"""The contract between Meltica's processes: names, endpoints, the journal, control messages.

    names      every ring name and endpoint of a run, spelled once
    journal    the exec journal's format and its reader (the writer is execution's)
    messages   typed control requests, the one reply shape, the error codes, the bounds
    identity   consumer keys: who may speak for a consumer name (the decision is there)
    limits     per-consumer request budgets
    server     the server end of a control channel: a ROUTER that never drops a reply
               silently, and what happens to bad input (counter, bounded dead letter)

Consumer identity, decided: a consumer is its name plus a key that its first SDK use
writes into the run directory (0600); every request for the name carries the key and
both servers check it against that file. A restarted strategy reads its key and gets
its consumer id back (execution assigns ids in order, once per name, kept in its
store), so its orders stay idempotent by (consumer, client_order_id); a process that
cannot read the run directory cannot speak for the name, nor create new names; a
second live process of the same name is refused by dispatch until the first falls
silent (heartbeats) or dies. Details and limits: `channels.identity`.

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
