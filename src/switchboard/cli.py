"""The ``switchboard`` command (DESIGN §3)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from switchboard import __version__
from switchboard.config import ConfigError, load_config, summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard",
        description="Switchboard: a self-hosted PBX with a Basix-compatible call control API.",
    )
    parser.add_argument("--version", action="version", version=f"switchboard {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity on stderr (default: INFO; INFO logs one line per SIP message)",
    )
    parser.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="text lines, or one JSON object per line (time, level, logger, message)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the PBX")
    serve.add_argument(
        "--config",
        type=Path,
        help="TOML config file (default: the bundled examples/switchboard.toml)",
    )
    check = commands.add_parser("check-config", help="validate a config file and summarise it")
    check.add_argument("file", type=Path)
    apply = commands.add_parser(
        "apply",
        help="make the database's directory what FILE says (running nodes follow within"
        " server.directory_poll_seconds)",
    )
    apply.add_argument("file", type=Path)
    export = commands.add_parser(
        "export",
        help="write the directory in force (with the provisioning API's changes) as a config"
        " file: FILE's [server] table and the database's domains",
    )
    export.add_argument(
        "--config",
        type=Path,
        help="the config file whose [server] table (and database) to use (default: the"
        " bundled example)",
    )
    export.add_argument("--output", type=Path, help="where to write it (default: stdout)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    if args.log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=args.log_level, handlers=[handler])
    if args.log_level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin otherwise
    try:
        config = load_config(args.config if args.command in ("serve", "export") else args.file)
    except ConfigError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print("\n".join(summary(config)))
        return 0
    if args.command in ("apply", "export"):
        from switchboard import provisioning  # noqa: PLC0415 - only these need the database

        if args.command == "apply":
            version = asyncio.run(provisioning.apply(config))
            print(f"directory version {version} applied from {args.file}")
            return 0
        text = asyncio.run(provisioning.export(config))
        if args.output is None:
            sys.stdout.write(text)
        else:
            args.output.write_text(text, encoding="utf-8")
        return 0
    from switchboard.app import Server  # noqa: PLC0415 - check-config needs no HTTP stack
    from switchboard.tls import TlsSetupError  # noqa: PLC0415

    _install_fast_loop()
    try:
        server = Server(config)
    except TlsSetupError as exc:  # a certificate or key that cannot be loaded
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    asyncio.run(server.run())
    return 0


class JsonLines(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def _install_fast_loop() -> None:
    try:
        import uvloop  # noqa: PLC0415 - optional dependency
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
