"""The four transaction state machines of RFC 3261 §17 (with RFC 6026's Accepted state)
and the layer that matches messages to them (§17.1.3, §17.2.3)."""
