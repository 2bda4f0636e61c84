"""Test harness for whole call flows in milliseconds (STYLE habits 2 and 13): an event loop
on virtual time (``clock``), an in-memory datagram network the SIP endpoint can run on
(``network``), and scripted peers (``autoanswer``). Shipped with the package so that
tests, benchmarks and users trying a SIP client can build on it; nothing in the product
imports it."""
