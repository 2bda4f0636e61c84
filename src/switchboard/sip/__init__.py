"""The SIP core: pure RFC 3261 code (no sockets, no clock) plus a thin asyncio edge.

Pure modules: ``grammar``, ``uri``, ``address``, ``via``, ``message``, ``framing``,
``transaction``, ``dialog``, ``digest``, ``sdp``, ``offer_answer``.
Edge modules: ``transport``, ``endpoint``.
"""
