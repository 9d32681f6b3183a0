#!/usr/bin/env python3
"""quake_status.py SERVER_IP [--port 27960] [--source ADDR ...] [--interval 0.01]

Polls an ioquake3 server with `getstatus` queries over UDP and prints every answer as one
JSON line on stdout, until stdin closes (or SIGTERM):

    {"t": <CLOCK_MONOTONIC seconds when the answer arrived>, "seq": N, "rtt_ms": x,
     "info": {"sv_hostname": ..., "mapname": ..., "g_timestamp": ..., ...},
     "players": [[score, ping, "name"], ...]}

Why several source addresses: ioquake3 answers getstatus from one address at most 10 times
in a burst and then once a second (SVC_RateLimitAddress(from, 10, 1000)), and all addresses
together at most once per 100 ms after a burst of 10 (the server's outbound bucket). Queries
go out every --interval seconds, round-robin over one socket bound to each --source address,
so that no address exceeds its own budget (give at least 1/interval addresses) and the
server's global budget is the only limit: an answer every ~100 ms while it runs, and a
burst of answers at once when it comes back from a silence.

The query's challenge is its sequence number, which the server echoes: each answer is
matched to its query (rtt_ms). Python 3 standard library only.
"""

import argparse
import json
import os
import select
import signal
import socket
import sys
import threading
import time

PREFIX = b"\xff\xff\xff\xff"


def parse(data):
    """(info dict, players [[score, ping, name]]) of a statusResponse, or None."""
    if not data.startswith(PREFIX + b"statusResponse"):
        return None
    lines = data[4:].decode("latin-1").split("\n")
    fields = lines[1].split("\\")[1:] if len(lines) > 1 else []
    info = dict(zip(fields[0::2], fields[1::2]))
    players = []
    for line in lines[2:]:
        parts = line.split(" ", 2)
        if len(parts) == 3:
            try:
                players.append([int(parts[0]), int(parts[1]), parts[2].strip('"')])
            except ValueError:
                pass
    return info, players


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("server")
    p.add_argument("--port", type=int, default=27960)
    p.add_argument("--source", action="append", default=[], help="a local address to send from (repeatable)")
    p.add_argument("--interval", type=float, default=0.01)
    a = p.parse_args()

    socks = []
    for addr in a.source or ["0.0.0.0"]:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, 0))
        s.setblocking(False)
        socks.append(s)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # The caller closes our stdin to stop us.
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()

    sent = {}   # seq -> monotonic send time
    seq = 0
    next_send = time.monotonic()
    out = sys.stdout
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_send:
            s = socks[seq % len(socks)]
            try:
                s.sendto(PREFIX + b"getstatus %d" % seq, (a.server, a.port))
                sent[seq] = now
            except OSError:
                pass    # e.g. no route for a moment: the next query tries again
            seq += 1
            next_send += a.interval
            if next_send < now:
                next_send = now + a.interval
            # Forget queries that will never be answered.
            if len(sent) > 5000:
                for k in sorted(sent)[:2500]:
                    del sent[k]
        ready, _, _ = select.select(socks, [], [], max(0.0, next_send - time.monotonic()))
        for s in ready:
            while True:
                try:
                    data = s.recv(65535)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                t = time.monotonic()
                r = parse(data)
                if r is None:
                    continue
                info, players = r
                n = int(info["challenge"]) if info.get("challenge", "").isdigit() else None
                rtt = (t - sent[n]) * 1000 if n in sent else None
                out.write(json.dumps({"t": t, "seq": n, "rtt_ms": rtt, "info": info, "players": players}) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(0)
    finally:
        try:
            os.close(1)
        except OSError:
            pass
