"""examples/callback_receiver.py (the README's "Trying it" receiver) checks signatures as
Switchboard makes them: the example stays true to ``callbacks/policy.py``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from switchboard.callbacks.policy import headers
from switchboard.config import load_config

RECEIVER = Path(__file__).resolve().parents[1] / "examples" / "callback_receiver.py"
BODY = b'{"result_code": 0, "uuid": "b5c0ffee"}'
NOW = 1_800_000_000.0


def _receiver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("callback_receiver", RECEIVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _signature(secret: str, body: bytes = BODY, now: float = NOW) -> str:
    return headers("delivery-1", body, secret, now)["X-Switchboard-Signature"]


def test_a_signature_made_by_switchboard_with_the_example_secret_holds() -> None:
    receiver = _receiver()
    secret = receiver.EXAMPLE_SECRET
    assert secret == load_config(None).domains[0].callback_secret  # the bundled example's
    assert receiver.signature_verdict(_signature(secret), BODY, secret, NOW + 1) == "ok"


def test_another_secret_a_changed_body_an_old_or_missing_signature_do_not() -> None:
    receiver = _receiver()
    secret = receiver.EXAMPLE_SECRET
    verdict = receiver.signature_verdict
    assert verdict(_signature("another-secret"), BODY, secret, NOW).startswith("WRONG")
    assert verdict(_signature(secret), BODY + b" ", secret, NOW).startswith("WRONG")
    assert verdict(_signature(secret), BODY, secret, NOW + 3600).startswith("too old")
    assert verdict(None, BODY, secret, NOW) == "missing"
    assert verdict("t=x,v1=", BODY, secret, NOW).startswith("malformed")
