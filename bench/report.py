"""Writing benchmark figures into docs/benchmarks.md, one section per benchmark."""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Figures written by the scripts in `bench/`; each section names the command that produced
it. Every benchmark runs its baseline in the same invocation: this machine is shared and
noisy, so compare the ratios more than the absolute numbers.
"""


def write_section(name: str, command: str, body: str) -> None:
    """Replace (or add) the section ``## name`` of docs/benchmarks.md."""
    text = DOC.read_text() if DOC.exists() else HEADER
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    section = f"## {name}\n\nCommand: `{command}`  \nRun: {when}, {machine}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.M | re.S)
    text = pattern.sub(section + "\n", text) if pattern.search(text) else text + "\n" + section
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text.rstrip() + "\n")
