"""Where every field of a ring segment lives. One writer, up to `max_readers` readers.

Every offset below is computed from the constants in this module; `tests/shm/
test_layout.py` checks this drawing against them. All fields are little-endian int64
words at 8-byte aligned offsets. Each cursor written by one process and read by
others sits alone on its own cache-line pair (128 bytes), so that the writer's
position and each reader's position never share a line (no false sharing, and the
adjacent-line prefetcher does not pair them).

    offset                       size          content
    0                            128           HEADER: magic, layout version, geometry,
                                               record dtype hash, writer identity, flags
    128                          128           WRITER_HEARTBEAT_NS (written by the writer)
    256                          128           WRITER_POSITION     (written by the writer)
    384                          128           WAKE: futex word (int32) + waiters hint
    512                          128 * R       READER SLOT i: state, pid, start ticks,
                                               position, lost, heartbeat_ns
    512 + 128 R                  DESCR_BYTES   record dtype description (orjson)
    seqs_offset                  8 * C         per-slot sequence words (overwrite policy)
    records_offset               S * C         C records of S bytes (numpy structured)

R = max_readers, C = capacity (a power of two), S = record size. `seqs_offset` and
`records_offset` are rounded up to a cache-line pair.
"""

MAGIC = int.from_bytes(b"MELTRNG1", "little")  # "Meltica ring, v1" in the first 8 bytes
LAYOUT_VERSION = 1
LINE_PAIR = 128
WORD = 8
DESCR_BYTES = 4096

# Word indexes in the HEADER line pair (offset 0).
H_MAGIC = 0
H_LAYOUT_VERSION = 1
H_CAPACITY = 2
H_RECORD_SIZE = 3
H_MAX_READERS = 4
H_POLICY = 5
H_DTYPE_HASH = 6
H_WRITER_PID = 7
H_WRITER_START_TICKS = 8
H_CREATED_NS = 9  # generation: a recreated segment of the same name has a new value
H_CLOSED = 10
H_DESCR_LEN = 11
H_SEQS_OFFSET = 12
H_RECORDS_OFFSET = 13
H_DEBUG = 14
HEADER_WORDS = 15

WRITER_HEARTBEAT_OFFSET = 1 * LINE_PAIR
WRITER_POSITION_OFFSET = 2 * LINE_PAIR
WAKE_OFFSET = 3 * LINE_PAIR  # int32 futex word at +0, waiters hint (int64) at +8
WAKE_HINT_OFFSET = WAKE_OFFSET + WORD
READERS_OFFSET = 4 * LINE_PAIR
READER_SLOT_BYTES = LINE_PAIR

# Word indexes inside one reader slot.
R_STATE = 0
R_PID = 1
R_START_TICKS = 2
R_POSITION = 3
R_LOST = 4
R_HEARTBEAT_NS = 5

# Reader slot states.
SLOT_FREE = 0
SLOT_ACTIVE = 1
SLOT_EVICTED = 2

# Overflow policies.
POLICY_LOSSLESS = 1
POLICY_OVERWRITE = 2
POLICY_NAMES = {POLICY_LOSSLESS: "lossless", POLICY_OVERWRITE: "overwrite"}
POLICY_CODES = {name: code for code, name in POLICY_NAMES.items()}


def align(offset: int, to: int = LINE_PAIR) -> int:
    """Round `offset` up to a multiple of `to`."""
    return (offset + to - 1) // to * to


def word(offset: int) -> int:
    """Index of the int64 word at byte `offset`."""
    assert offset % WORD == 0, offset
    return offset // WORD


def reader_slot_offset(i: int) -> int:
    return READERS_OFFSET + i * READER_SLOT_BYTES


def descr_offset(max_readers: int) -> int:
    return READERS_OFFSET + max_readers * READER_SLOT_BYTES


def seqs_offset(max_readers: int) -> int:
    return align(descr_offset(max_readers) + DESCR_BYTES)


def records_offset(max_readers: int, capacity: int) -> int:
    return align(seqs_offset(max_readers) + WORD * capacity)


def segment_size(max_readers: int, capacity: int, record_size: int) -> int:
    return records_offset(max_readers, capacity) + record_size * capacity
