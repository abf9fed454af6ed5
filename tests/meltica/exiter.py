"""A program for the launcher tests: `python -m tests.meltica.exiter MODE [TEXT]`.

    exit CODE TEXT   print TEXT (and a chatty line after it) on stderr, exit with CODE
    raise TEXT       raise ValueError(TEXT): a traceback, exit 1
    sleep            print "ready" and sleep until killed
"""

import sys
import time


def main(argv: list[str]) -> int:
    mode = argv[0]
    if mode == "exit":
        print(argv[2], file=sys.stderr, flush=True)
        print("shutting down, 3 records flushed", file=sys.stderr, flush=True)
        return int(argv[1])
    if mode == "raise":
        print("starting", flush=True)
        raise ValueError(argv[1])
    print("ready", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
