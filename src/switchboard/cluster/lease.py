"""Keeping a node's lease: a heartbeat, then a look for dead nodes, every few seconds.

A lease of 3 × ``every`` survives two lost heartbeats. Redis out of reach is logged and
tried again: if it stays so for the lease, the lease lapses and the next heartbeat raises
LeaseLostError, which ends this loop: the node has been declared dead, what it held is
released, and it must stop taking calls and ``join()`` again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from switchboard.cluster.errors import StateUnavailableError
from switchboard.cluster.state import Leases

log = logging.getLogger("switchboard.cluster")


async def keep_lease(
    state: Leases, *, every: float, on_node_failed: Callable[[str], Awaitable[None]]
) -> None:
    """Run until cancelled, or until the lease is lost (LeaseLostError). Each dead node
    found is passed to ``on_node_failed`` once, on one node of the cluster."""
    while True:
        try:
            await state.heartbeat()
            for node in await state.reap_dead_nodes():
                log.warning("cluster: node %s stopped renewing its lease; released it", node)
                try:
                    await on_node_failed(node)
                except Exception:  # one failed report must not stop the heartbeat
                    log.exception("cluster: reporting the failure of node %s failed", node)
        except StateUnavailableError as exc:
            log.warning("cluster: %s", exc)
        await asyncio.sleep(every)
