"""A loopback HTTP/1.1 server that stops answering for 500 ms every 2 s (coordinated omission).

Usage: python scripts/stall_server.py [--period 2] [--stall 0.5] PORTFILE — binds 127.0.0.1
on a free port and writes it to PORTFILE when ready. Used by scripts/bench_peers.sh (test d).

Time is cut into periods from the server's start: the first ``--stall`` seconds of each
period are a stall, during which every request is held until the stall ends; any other
request is answered at once. For an open-model load at a steady rate, a quarter of the
requests fall in a stall and wait (stall end - due time), uniform over (0, 500 ms], the rest
~0: so the latency's p90 is 500 ms x (1 - 0.10/0.25) = 300 ms and its p99 is
500 ms x (1 - 0.01/0.25) = 480 ms. A closed-model client that stops sending while it waits
records only its few held requests and reports far less.
"""

from __future__ import annotations

import argparse
import time

from delay_server import serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("portfile")
    parser.add_argument("--period", type=float, default=2.0, help="seconds (2)")
    parser.add_argument("--stall", type=float, default=0.5, help="seconds (0.5)")
    args = parser.parse_args()
    period, stall = args.period, args.stall
    start = time.monotonic()

    def release_at(arrival: float) -> float:
        phase = (arrival - start) % period
        return arrival + (stall - phase) if phase < stall else arrival

    serve(release_at, args.portfile)


if __name__ == "__main__":
    main()
