"""Plainly written messages as phones and proxies send them (RFC 3261 §24, RFC 3665, RFC 5626)."""

from __future__ import annotations

# RFC 3261 §24.2 F1, with an SDP body: the message bench.parse times.
INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;rport\r\n"
    b"Max-Forwards: 70\r\nTo: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\nCSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\nContent-Type: application/sdp\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nContent-Length: 127\r\n\r\n"
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.101\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\n"
)
RINGING = (
    b"SIP/2.0 180 Ringing\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;rport=5060\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>;tag=8321234356\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\nCSeq: 314159 INVITE\r\n"
    b"Contact: <sip:bob@192.0.2.4>\r\nContent-Length: 0\r\n\r\n"
)
# A registration through an outbound proxy: two Vias, a quoted instance id (RFC 5626 §4.1).
REGISTER = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-proxy;received=192.0.2.1\r\n"
    b"Via: SIP/2.0/TCP [2001:db8::9]:50600;branch=z9hG4bK-ua;rport=50600\r\n"
    b"Max-Forwards: 69\r\n"
    b'From: "Alice Liddell" <sip:alice@example.com>;tag=a73kszlfl\r\n'
    b"To: sip:alice@example.com\r\n"
    b"Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.9\r\nCSeq: 2 REGISTER\r\n"
    b"Contact: <sip:alice@192.0.2.9:50600;transport=tcp;ob>;reg-id=1;expires=600;"
    b'+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"\r\n'
    b"Supported: path, outbound\r\nUser-Agent: Phone/1.0\r\nExpires: 600\r\n"
    b"X-Account: 42\r\nContent-Length: 0\r\n\r\n"
)
