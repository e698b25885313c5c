#!/usr/bin/env python3
"""Many authenticated idle sessions, and echo latency, for bench/run.sh.

    sessions.py hold ADDR N      open N connections, authenticate each, print
                                 "ready N SECONDS", then hold them idle until
                                 SIGTERM or SIGINT
    sessions.py echo ADDR COUNT  one new connection: authenticate, COUNT echo
                                 round trips, print the median and the largest
                                 round trip in milliseconds

ADDR is HOST:PORT or [IPv6]:PORT; the token is $FTPSH_TOKEN (empty: none).

The wire format (core/src/protocol): each side sends b"FTPSH" and a big-endian
u16 version; the client then sends an Auth frame (kind 0x01, payload a u32
length and the UTF-8 token); the server answers Ok (kind 0x80, empty) or Error
(kind 0x81, a u32-length message). Frames are u8 kind, u32 big-endian length,
payload. Echo is kind 0x02 (a string), answered by Text (kind 0x82, a string).
"""

import os
import signal
import socket
import statistics
import struct
import sys
import time

MAGIC = b"FTPSH"
VERSION = 3
AUTH, ECHO = 0x01, 0x02
OK, ERROR, TEXT = 0x80, 0x81, 0x82
# Below the server's default --max-handshakes (64): a batch is greeted and
# authenticated together, so no connection waits in its handshake long.
BATCH = 32


def parse_addr(addr):
    if addr.startswith("["):
        host, _, port = addr[1:].partition("]:")
        return socket.AF_INET6, (host, int(port))
    host, _, port = addr.rpartition(":")
    return socket.AF_INET, (host, int(port))


def frame(kind, payload=b""):
    return struct.pack(">BI", kind, len(payload)) + payload


def string(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b


def read_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the server")
        buf += chunk
    return bytes(buf)


def read_frame(sock):
    kind, length = struct.unpack(">BI", read_exact(sock, 5))
    return kind, read_exact(sock, length)


def error_text(payload):
    (n,) = struct.unpack(">I", payload[:4])
    return payload[4 : 4 + n].decode(errors="replace")


def start(family, target, token):
    """Connects and sends the greeting and the token without waiting."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.connect(target)
    s.sendall(MAGIC + struct.pack(">H", VERSION) + frame(AUTH, string(token)))
    return s


def finish(s):
    """Reads the server's greeting and the answer to the token."""
    greeting = read_exact(s, 7)
    if greeting[:5] != MAGIC:
        raise ConnectionError(f"not an ftpsh server (greeting {greeting!r})")
    kind, payload = read_frame(s)
    if kind == ERROR:
        raise ConnectionError(f"refused: {error_text(payload)}")
    if kind != OK:
        raise ConnectionError(f"unexpected reply 0x{kind:02x} to the token")


def hold(addr, n, token):
    family, target = parse_addr(addr)
    socks = []
    t0 = time.perf_counter()
    try:
        while len(socks) < n:
            batch = [start(family, target, token) for _ in range(min(BATCH, n - len(socks)))]
            for s in batch:
                finish(s)
            socks.extend(batch)
    except (OSError, ConnectionError) as e:
        print(f"failed after {len(socks)} sessions: {e}", flush=True)
        return 1
    # Idle until told to stop (a background job's standard input is
    # /dev/null, so a signal is the way to end it).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"ready {len(socks)} {time.perf_counter() - t0:.3f}", flush=True)
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        for s in socks:
            s.close()
    return 0


def echo(addr, count, token):
    family, target = parse_addr(addr)
    s = start(family, target, token)
    finish(s)
    times = []
    for i in range(count):
        t0 = time.perf_counter()
        s.sendall(frame(ECHO, string(f"ping {i}")))
        kind, payload = read_frame(s)
        times.append(time.perf_counter() - t0)
        if kind != TEXT:
            print(f"unexpected reply 0x{kind:02x} to echo", file=sys.stderr)
            return 1
    s.close()
    print(f"{statistics.median(times) * 1000:.3f} {max(times) * 1000:.3f}")
    return 0


def main(argv):
    if len(argv) != 4 or argv[1] not in ("hold", "echo"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    token = os.environ.get("FTPSH_TOKEN", "")
    verb, addr, n = argv[1], argv[2], int(argv[3])
    return hold(addr, n, token) if verb == "hold" else echo(addr, n, token)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
