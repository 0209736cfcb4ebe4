"""``python -m companion.sim --port PORT``: serve virtual bands to other processes.

Prints one line saying where to connect (``sim://127.0.0.1:PORT``), then runs
until Ctrl-C or SIGTERM, and switches the bands off cleanly either way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from ..errors import CompanionError
from .band import PairingConfirmation
from .serve import SimServer, run_sim_server, terminal_wearer

__all__ = ["main"]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m companion.sim",
        description="Run virtual bands in this process, for hosts in other processes.",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any)")
    parser.add_argument("--bands", type=int, default=1, help="how many bands (default 1)")
    parser.add_argument("--name", default="Companion", help="advertised name (at most 11 bytes)")
    parser.add_argument(
        "--first-serial",
        type=int,
        default=1,
        help="serial number of the first band, SIM0001 by default (servers run side by side "
        "need different ones)",
    )
    parser.add_argument("--drift-ppm", type=float, default=0.0, help="band clock drift")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="band clocks this many times faster (default 1)"
    )
    parser.add_argument(
        "--auto-confirm",
        action="store_true",
        help="bands confirm every pairing code themselves (unattended demos and tests): this "
        "gives up MITM protection, anyone who reaches the port and claims a display pairs",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log hosts coming and going")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    def ready(server: SimServer) -> None:
        bands = ", ".join(f"{band.config.name} {band.address}" for band in server.bands)
        # The one line a script waits for; flushed, as stdout is usually a pipe then.
        print(f"virtual bands ready at {server.url} ({bands})", flush=True)

    def say(line: str) -> None:
        print(line, flush=True)

    confirmation = (
        PairingConfirmation.AUTOMATIC if args.auto_confirm else PairingConfirmation.WEARER
    )
    ask = None if args.auto_confirm else terminal_wearer(say)
    if not args.auto_confirm and ask is None:
        print(
            "stdin is not a terminal: nobody can confirm a pairing code here, so every pairing "
            "is refused (--auto-confirm for an unattended demo)",
            file=sys.stderr,
        )
    serving = asyncio.ensure_future(
        run_sim_server(
            args.port,
            bands=args.bands,
            name=args.name,
            drift_ppm=args.drift_ppm,
            speed=args.speed,
            confirmation=confirmation,
            ask_wearer=ask,
            ready=ready,
            first_serial=args.first_serial,
        )
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, serving.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await serving  # until Ctrl-C or SIGTERM cancels it, switching the bands off


def main(argv: list[str] | None = None) -> int:
    """Run the band server until Ctrl-C or SIGTERM; the exit status."""
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        asyncio.run(_serve(args))
    except (CompanionError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
