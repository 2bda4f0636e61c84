"""``quick_init``: a frozen dataclass's ``__init__`` replaced by one that sets its slots
directly must take what the generated one takes and build what it builds."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from dataclasses import KW_ONLY, InitVar, dataclass, field

import pytest

from switchboard.cti.channels import Channel
from switchboard.quick_init import quick_init
from switchboard.sip.headers import Header
from switchboard.sip.uri import SipUri


def _counter() -> list[int]:
    return [1]


def _every_kind() -> tuple[type, type]:
    """The same fields twice: as ``dataclasses`` builds them, and with ``quick_init``."""

    def define() -> type:
        @dataclass(frozen=True, slots=True)
        class Every:
            required: str
            number: int = 7
            listed: list[int] = field(default_factory=_counter)
            derived: str = field(init=False, default="unset")
            made: dict[str, int] = field(init=False, default_factory=dict)
            later: str = field(init=False, repr=False, compare=False)
            named: str | None = field(default=None, kw_only=True)
            must: int = field(kw_only=True, default=0)

            def __post_init__(self) -> None:
                object.__setattr__(self, "later", self.required.upper())

        return Every

    return define(), quick_init(define())


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("a",), {}),
        (("a", 3), {}),
        (("a", 3, [9]), {"named": "n", "must": 2}),
        ((), {"required": "a", "listed": [], "must": 5}),
    ],
)
def test_it_builds_what_the_generated_init_builds(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    plain, quick = _every_kind()
    expected, built = plain(*args, **kwargs), quick(*args, **kwargs)
    for f in dataclasses.fields(plain):
        assert getattr(built, f.name) == getattr(expected, f.name), f.name
    assert built.later == expected.later == "A"  # __post_init__ ran


def test_a_default_factory_is_called_for_each_object() -> None:
    _, quick = _every_kind()
    first, second = quick("a"), quick("b")
    assert first.listed == [1] and first.listed is not second.listed
    assert first.made == {} and first.made is not second.made


def test_the_signature_is_the_generated_one() -> None:
    plain, quick = _every_kind()
    assert str(inspect.signature(quick)) == str(inspect.signature(plain))
    assert [p.kind for p in inspect.signature(quick).parameters.values()] == [
        p.kind for p in inspect.signature(plain).parameters.values()
    ]


def test_a_wrong_call_fails_as_the_generated_one_does() -> None:
    _, quick = _every_kind()
    with pytest.raises(TypeError, match="required"):
        quick()
    with pytest.raises(TypeError):
        quick("a", 1, [], "too many")
    with pytest.raises(TypeError, match="unknown"):
        quick("a", unknown=1)
    with pytest.raises(TypeError):
        quick("a", derived="not an init field")


def test_the_class_stays_frozen() -> None:
    _, quick = _every_kind()
    built = quick("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.number = 8
    assert quick("a") == quick("a") and quick("a") != quick("b")


def test_it_refuses_a_class_it_cannot_build() -> None:
    @dataclass(frozen=True)
    class Unslotted:
        a: int

    @dataclass(slots=True)
    class Mutable:
        a: int

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        a: int
        seed: InitVar[int] = 0

        def __post_init__(self, seed: int) -> None:
            pass

    @dataclass(frozen=True, slots=True, init=False)
    class OwnInit:
        a: str

        def __init__(self, a: str) -> None:
            object.__setattr__(self, "a", a.upper())

    # a class body would mangle the name: only a made class can carry it
    reserved = dataclasses.make_dataclass(
        "Reserved", [("__quick_factory", int, 0)], frozen=True, slots=True
    )

    for cls in (Unslotted, Mutable, WithInitVar, OwnInit, reserved):
        with pytest.raises(TypeError, match=cls.__qualname__):
            quick_init(cls)
    assert OwnInit("x").a == "X"  # left as it was


def test_fields_of_a_base_a_field_called_self_and_keyword_only_sections() -> None:
    @dataclass(frozen=True, slots=True)
    class Base:
        a: int

    @quick_init
    @dataclass(frozen=True, slots=True)
    class Derived(Base):
        self: str = "me"
        _: KW_ONLY
        keyed: int = 2

    built = Derived(1, "you", keyed=3)
    assert (built.a, built.self, built.keyed) == (1, "you", 3)
    assert Derived(1) == Derived(a=1, self="me", keyed=2)
    with pytest.raises(TypeError):
        Derived(1, "you", 3)  # type: ignore[call-arg]  # keyed is keyword-only


def test_its_annotations_resolve_in_the_class_module() -> None:
    hints = typing.get_type_hints(SipUri.__init__)
    assert hints["params"].__name__ == "Params"
    assert "Params" in str(inspect.signature(SipUri, eval_str=True))


def test_the_project_classes_carry_it() -> None:
    """The hot classes are built by it, and still compare and validate as before."""
    for cls in (Header, SipUri, Channel):
        assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"
        assert cls.__init__.__code__.co_filename == "<string>"
        assert "_set_" in " ".join(cls.__init__.__code__.co_freevars)
    assert Header("Via", "x").key == "via"  # its __post_init__
    with pytest.raises(ValueError, match="not a Basix last_event"):
        Channel(uuid="u", domain="d", last_event="NOT_AN_EVENT")
    assert SipUri(user="a", host="h") == SipUri(user="a", host="h")
