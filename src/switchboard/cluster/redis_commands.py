"""Commands between nodes over Redis pub/sub: a request on the target's ``commands``
channel, its answer on the sender's ``replies`` channel.

Pub/sub delivers at most once and keeps nothing, which is what a command wants: a hangup
that arrives after its sender gave up would surprise everyone. The target's lease is
checked and the request published in one script: a dead node, or one not listening, is
answered ``UndeliverableError`` at once; a node that takes it but does not answer within
the sender's timeout, ``CommandTimeoutError``. A node runs at most ``max_handlers``
commands at a time, each for at most ``handler_timeout`` s; more are answered as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from switchboard.cluster import redis_scripts
from switchboard.cluster.errors import (
    CommandFailedError,
    CommandTimeoutError,
    UndeliverableError,
)
from switchboard.cluster.redis_keys import Keys
from switchboard.cluster.redis_link import RedisLink
from switchboard.cluster.values import (
    MAX_BODY_BYTES,
    CommandHandler,
    JsonObject,
    check_node,
    decode,
    encode,
)

log = logging.getLogger("switchboard.cluster")

RECONNECT_SECONDS = 0.5


class Mailbox:
    def __init__(
        self,
        link: RedisLink,
        keys: Keys,
        node: str,
        *,
        max_handlers: int = 100,
        handler_timeout: float = 30.0,
    ) -> None:
        self._link = link
        self._keys = keys
        self._node = node
        self._max_handlers = max_handlers
        self._handler_timeout = handler_timeout
        self._send = link.client.register_script(redis_scripts.SEND)
        self.handler: CommandHandler | None = None
        self._waiting: dict[str, asyncio.Future[JsonObject]] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._pubsub = pubsub = self._link.client.pubsub(ignore_subscribe_messages=True)
        channels = self._keys.commands(self._node), self._keys.replies(self._node)
        await self._link("subscribe", pubsub.subscribe(*channels))
        self._listener = asyncio.create_task(self._listen(pubsub), name="cluster-mailbox")

    async def aclose(self) -> None:
        tasks = [t for t in (self._listener, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                close: Callable[[], Awaitable[None]] = self._pubsub.aclose
                await close()
            self._pubsub = None

    # -- sending ---------------------------------------------------------------------------

    async def send(self, node: str, command: JsonObject, timeout: float) -> JsonObject:
        check_node(node)
        encode("command", command)  # a JSON object, not too long
        ident = secrets.token_hex(8)
        message = json.dumps({"id": ident, "from": self._node, "command": command})
        answer = asyncio.get_running_loop().create_future()
        self._waiting[ident] = answer
        try:
            keys, args = [self._keys.nodes], [node, self._keys.commands(node), message]
            listeners = await self._link("a command", self._send(keys=keys, args=args))
            if int(listeners) == -1:
                raise UndeliverableError(f"node {node} is not alive (no lease)")
            if int(listeners) == 0:
                raise UndeliverableError(f"node {node} does not listen for commands")
            async with asyncio.timeout(timeout):
                answered: JsonObject = await answer
                return answered
        except TimeoutError:
            raise CommandTimeoutError(f"node {node} did not answer in {timeout:g} s") from None
        finally:
            del self._waiting[ident]
            if answer.done() and not answer.cancelled():
                answer.exception()  # an answer that came as the timeout struck: seen

    def _answered(self, reply: dict[str, Any]) -> None:
        waiting = self._waiting.get(str(reply.get("id")))
        if waiting is None or waiting.done():
            return  # its sender gave up
        if reply.get("ok") is True and isinstance(reply.get("answer"), dict):
            waiting.set_result(reply["answer"])
        elif reply.get("undeliverable") is True:
            waiting.set_exception(UndeliverableError(str(reply.get("error"))))
        else:
            waiting.set_exception(CommandFailedError(str(reply.get("error"))))

    # -- receiving -------------------------------------------------------------------------

    async def _listen(self, pubsub: PubSub) -> None:
        replies = self._keys.replies(self._node)
        lost = False
        while True:
            try:
                message = await pubsub.get_message(timeout=1.0)
            except (RedisError, OSError) as exc:
                # The pub/sub connection reconnects and subscribes again on the next read;
                # meanwhile commands to this node are undeliverable, as they should be.
                if not lost:
                    log.warning("cluster: lost the command channel (%s); reconnecting", exc)
                lost = True
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            if lost:
                log.warning("cluster: the command channel is back")
                lost = False
            if message is None or message.get("type") != "message":
                continue
            body = _parse(message.get("data"))
            if body is None:
                log.warning("cluster: dropped a malformed message on %s", message.get("channel"))
            elif message.get("channel") == replies:
                self._answered(body)
            else:
                self._received(body)

    def _received(self, request: dict[str, Any]) -> None:
        ident, sender, command = request.get("id"), request.get("from"), request.get("command")
        if not isinstance(ident, str) or not isinstance(sender, str):
            return
        if not isinstance(command, dict):
            self._reply(sender, {"id": ident, "ok": False, "error": "malformed command"})
        elif self.handler is None:
            error = f"node {self._node} takes no commands"
            self._reply(sender, {"id": ident, "ok": False, "undeliverable": True, "error": error})
        elif len(self._running) >= self._max_handlers:
            error = f"node {self._node} is busy ({self._max_handlers} commands running)"
            self._reply(sender, {"id": ident, "ok": False, "error": error})
        else:
            self._track(self._handle(self.handler, ident, sender, command))

    async def _handle(
        self, handler: CommandHandler, ident: str, sender: str, command: JsonObject
    ) -> None:
        try:
            async with asyncio.timeout(self._handler_timeout):
                answer = decode(encode("answer", await handler(command)))
            reply: JsonObject = {"id": ident, "ok": True, "answer": answer}
        except TimeoutError:
            error = f"node {self._node} did not finish the command in {self._handler_timeout:g} s"
            reply = {"id": ident, "ok": False, "error": error}
        except Exception as exc:  # the sender reports it; this node carries on
            log.warning("cluster: command from %s failed: %r", sender, exc)
            reply = {"id": ident, "ok": False, "error": f"node {self._node}: {exc!s:.500}"}
        await self._publish_reply(sender, reply)

    def _reply(self, sender: str, reply: JsonObject) -> None:
        self._track(self._publish_reply(sender, reply))

    async def _publish_reply(self, sender: str, reply: JsonObject) -> None:
        try:
            channel = self._keys.replies(check_node(sender))
            await self._link("a reply", self._link.client.publish(channel, json.dumps(reply)))
        except Exception as exc:  # the sender times out; nothing else to do
            log.warning("cluster: could not answer %s: %s", sender, exc)

    def _track(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)


def _parse(data: object) -> dict[str, Any] | None:
    if not isinstance(data, str) or len(data) > 2 * MAX_BODY_BYTES:
        return None
    try:
        body = json.loads(data)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
