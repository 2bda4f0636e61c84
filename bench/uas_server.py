"""An auto-answering UAS on the Switchboard endpoint, as its own process, for benchmarks.

python -m bench.uas_server PORT [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.useragent import UserAgent
from switchboard.testing.autoanswer import auto_answer


async def serve(port: int) -> None:
    endpoint = SipEndpoint("127.0.0.1", port)
    await endpoint.start()
    auto_answer(UserAgent(endpoint))
    print("ready", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.loop == "uvloop":
        import uvloop  # noqa: PLC0415 - chosen on the command line

        uvloop.run(serve(args.port))
    else:
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
