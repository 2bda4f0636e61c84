"""Where a call's CPU goes: the server's cProfile statistics as a table for
docs/benchmarks.md (``python -m bench.call_group_ladder --profile RATE``).

cProfile slows the server (each Python call is counted), so the profile rung's own
figures are not comparable with the ladder's; the shares of time are what it is for.
"""

from __future__ import annotations

import pstats
from pathlib import Path

TOP = 30


def _where(function: tuple[str, int, str]) -> str:
    """``module/file.py:line(function)``, from the package down (``~`` for the stdlib)."""
    filename, line, name = function
    path = Path(filename)
    parts = path.parts
    for root in ("switchboard", "site-packages"):
        if root in parts:
            path = Path(*parts[parts.index(root) + (root == "site-packages") :])
            break
    else:
        if filename.startswith("~") or filename.startswith("<"):
            return name  # a built-in
        path = Path(path.name)
    return f"{path}:{line}({name})"


def table(stats_file: Path, calls: int, top: int = TOP) -> str:
    """The top functions by own time, with their cumulative time, per completed call."""
    stats = pstats.Stats(str(stats_file))
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(own for _, _, own, _, _ in entries.values())
    rows = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:top]
    per_call = 1e6 / max(calls, 1)
    lines = [
        "| function | own % | own µs/call | cumulative µs/call | calls/call |",
        "|---|---|---|---|---|",
    ]
    for function, (_primitive, count, own, cumulative, _callers) in rows:
        lines.append(
            f"| `{_where(function)}` | {100 * own / total:.1f} | {own * per_call:.0f} | "
            f"{cumulative * per_call:.0f} | {count / max(calls, 1):.1f} |"
        )
    return "\n".join(lines)


def by_cumulative(stats_file: Path, calls: int, top: int = TOP) -> str:
    """Switchboard's own functions by cumulative time per completed call: which parts of
    the call (API, SIP, media, storage, CTI) cost most, callees included."""
    stats = pstats.Stats(str(stats_file))
    entries = stats.stats  # type: ignore[attr-defined]
    ours = [(f, v) for f, v in entries.items() if "switchboard" in Path(f[0]).parts]
    rows = sorted(ours, key=lambda item: item[1][3], reverse=True)[:top]
    per_call = 1e6 / max(calls, 1)
    lines = ["| function | cumulative µs/call | calls/call |", "|---|---|---|"]
    for function, (_primitive, count, _own, cumulative, _callers) in rows:
        lines.append(
            f"| `{_where(function)}` | {cumulative * per_call:.0f} | {count / max(calls, 1):.1f} |"
        )
    return "\n".join(lines)
