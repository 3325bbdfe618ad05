"""core.registry: the name -> factory registry every pluggable part uses (fusions, encoders, maskers,
kinds, data sources)."""
from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.registry import Registry


def _shapes() -> Registry[str]:
    reg: Registry[str] = Registry("shape")

    @reg.register("circle", corners=0)
    def circle(radius: int = 1) -> str:
        return f"circle r={radius}"

    @reg.register("square", corners=4)
    def square() -> str:
        return "square"

    @reg.register("triangle", corners=3)
    def triangle() -> str:
        return "triangle"

    return reg


def test_register_create_and_list():
    reg = _shapes()
    assert reg.names() == ["circle", "square", "triangle"]  # registration order
    assert list(reg) == reg.names()
    assert "square" in reg and "hexagon" not in reg
    assert reg.create("circle", radius=3) == "circle r=3"
    assert reg.get("square")() == "square"
    assert reg.meta("square") == {"corners": 4}
    assert reg.names(corners=3) == ["triangle"] and reg.names(corners=5) == []


def test_meta_is_a_copy():
    reg = _shapes()
    reg.meta("square")["corners"] = 5
    assert reg.meta("square") == {"corners": 4}


def test_unknown_name_lists_the_known_names():
    reg = _shapes()
    with pytest.raises(ConfigError) as info:
        reg.create("sqaure")
    err = info.value
    assert err.problem == "unknown shape 'sqaure'"
    assert "did you mean 'square'?" in err.fix and "use one of: circle, square, triangle" in err.fix
    with pytest.raises(ConfigError) as info:
        reg.meta("hexagon")
    assert "did you mean" not in info.value.fix and "circle, square, triangle" in info.value.fix


def test_empty_registry_says_none_are_registered():
    with pytest.raises(ConfigError) as info:
        Registry("gadget").get("x")
    assert info.value.fix.endswith("use one of: (none registered)")


def test_duplicate_registration_is_refused_and_keeps_the_first():
    reg = _shapes()
    with pytest.raises(ValueError, match="shape 'circle' is registered twice"):
        reg.register("circle", corners=9)(lambda: "another circle")
    assert reg.create("circle") == "circle r=1" and reg.meta("circle") == {"corners": 0}


def test_unregister_removes_an_entry():
    reg = _shapes()
    reg.unregister("square")
    assert reg.names() == ["circle", "triangle"]
    with pytest.raises(ConfigError):
        reg.unregister("square")
    reg.register("square", corners=4)(lambda: "again")  # the name is free again
    assert reg.create("square") == "again"
