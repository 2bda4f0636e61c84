"""``switchboard`` under cProfile, profiling only between two signals, so the profile
holds the load and not the start-up (imports, migrations) or the shutdown.

    python -m bench.profiled_serve OUT.prof [switchboard arguments…]

SIGUSR1 starts profiling; SIGUSR2 stops it and writes the statistics to OUT.prof.
"""

from __future__ import annotations

import cProfile
import signal
import sys
from types import FrameType

from switchboard.cli import main

profiler = cProfile.Profile()


def _start(_signal: int, _frame: FrameType | None) -> None:
    profiler.enable()


def _stop(_signal: int, _frame: FrameType | None) -> None:
    profiler.disable()
    profiler.dump_stats(sys.argv[1])


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
    sys.exit(main(sys.argv[2:]))
