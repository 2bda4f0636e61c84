"""Media: anchored RTP relay with ringback and G.711 conversion.

Pure: ``g711`` (codec tables), ``rtp`` (RFC 3550 headers), ``ports`` (allocation),
``tones`` (ringback cadences), ``stats`` (per-leg counters). Edge: ``relay`` (asyncio
sockets, pacing). The call engine talks to ``relay.MediaRelay`` only.
"""
