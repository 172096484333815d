"""The grading worker process that deadline.py starts (`python -c ... worker_main(MODULES)`).

Messages are length-prefixed pickles on stdin/stdout; only deadline.py talks to it, with functions
of this package, so unpickling them is not a trust boundary.
"""

from __future__ import annotations

import pickle
import struct
import sys


def send(stream, message: object) -> None:
    payload = pickle.dumps(message)
    stream.write(struct.pack("<Q", len(payload)) + payload)
    stream.flush()


def receive_bytes(stream) -> bytes:
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError("the other end closed the pipe")
    (length,) = struct.unpack("<Q", header)
    payload = stream.read(length)
    if len(payload) < length:
        raise EOFError("the other end closed the pipe mid-message")
    return payload


def receive(stream) -> object:
    return pickle.loads(receive_bytes(stream))


def worker_main(preload: list[str]) -> None:
    """Body of the worker process: import `preload`, say 'ready', then call what it is sent and send
    back ('ok', value) or ('error', text) until its input closes."""
    import importlib

    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print in called code must not corrupt the reply stream
    for module in preload:
        importlib.import_module(module)
    send(replies, ("ready", None))
    while True:
        try:
            payload = receive_bytes(requests)
        except EOFError:
            return
        try:
            function, args = pickle.loads(payload)  # a function this process cannot import fails here
            send(replies, ("ok", function(*args)))
        except Exception as error:  # reported to the caller, who decides; the worker lives on
            send(replies, ("error", f"{type(error).__name__}: {error}"))
