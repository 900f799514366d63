"""nvmemd/values.py behaves as dataclasses does, for what nvmemd uses of it.

Each check builds the same class with ``@dataclass`` and with ``@value``/``@record``
and compares what they do.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import pytest

from nvmemd import values


def pair(frozen: bool) -> tuple[Any, Any]:
    """The same class, as a dataclass and as a value class."""

    def body(decorate: Any, field: Any) -> Any:
        @decorate
        class Cell:
            """A cell."""

            name: str
            offset: int = 0
            tags: list[str] = field(default_factory=list)
            hook: object = field(default=None, compare=False, repr=False)
            kind: ClassVar[str] = "cell"

            @property
            def end(self) -> int:
                return self.offset + 1

        return Cell

    data = body(dataclasses.dataclass(frozen=frozen), dataclasses.field)
    mine = body(values.value if frozen else values.record, values.field)
    return data, mine


@pytest.mark.parametrize("frozen", [True, False])
def test_construction_repr_and_equality_match_dataclasses(frozen: bool) -> None:
    data, mine = pair(frozen)
    for args, kwargs in [(("a",), {}), (("a", 3), {}), (("a",), {"tags": ["x"]}),
                         ((), {"name": "b", "offset": 2, "hook": print})]:
        d, m = data(*args, **kwargs), mine(*args, **kwargs)
        assert repr(m).replace("mine", "") == repr(d).replace("data", "")
        assert (m.name, m.offset, m.tags, m.hook, m.end) == (d.name, d.offset, d.tags, d.hook,
                                                               d.end)
        assert m == mine(*args, **kwargs)
        assert m == values.replace(m, hook=object())  # compare=False
        assert m != values.replace(m, offset=m.offset + 1)
        assert m != d  # another class: NotImplemented, then identity
    assert mine.kind == "cell" and "kind" not in [f.name for f in values.fields(mine("a"))]
    assert mine("a").tags is not mine("a").tags  # a fresh default per instance
    assert [f.name for f in values.fields(mine("a"))] == [
        f.name for f in dataclasses.fields(data("a"))]
    assert mine.__match_args__ == data.__match_args__


@pytest.mark.parametrize(("args", "kwargs"), [((), {}), (("a", 1, [], None, 5), {}),
                                              (("a",), {"nope": 1}), (("a",), {"name": "b"})])
def test_bad_arguments_fail_as_with_dataclasses(args: tuple[Any, ...],
                                                kwargs: dict[str, Any]) -> None:
    data, mine = pair(True)
    with pytest.raises(TypeError):
        data(*args, **kwargs)
    with pytest.raises(TypeError):
        mine(*args, **kwargs)


def test_frozen_values_are_hashable_and_immutable() -> None:
    _, mine = pair(True)
    m = mine("a", 1, ("x",))  # type: ignore[arg-type]  # a tuple: hashable
    assert hash(m) == hash(mine("a", 1, ("x",)))  # type: ignore[arg-type]
    assert {m, mine("a", 1, ("x",))} == {m}  # type: ignore[arg-type]
    for action in (lambda: setattr(m, "offset", 2), lambda: delattr(m, "name"),
                   lambda: setattr(m, "other", 1)):
        with pytest.raises(AttributeError):  # values.FrozenInstanceError, as dataclasses
            action()
    assert m.offset == 1


def test_records_are_mutable_and_unhashable() -> None:
    _, mine = pair(False)
    m = mine("a")
    m.offset = 5
    m.tags.append("x")
    assert (m.offset, m.tags) == (5, ["x"])
    with pytest.raises(TypeError):
        hash(m)


def test_a_default_before_a_required_field_is_refused() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        @values.value
        class Bad:
            a: int = 0
            b: int


def test_methods_the_class_writes_are_kept() -> None:
    @values.value
    class Named:
        name: str

        def __repr__(self) -> str:
            return f"<{self.name}>"

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Named) and other.name.lower() == self.name.lower()

        def __hash__(self) -> int:
            return hash(self.name.lower())

    assert repr(Named("x")) == "<x>"
    assert Named("A") == Named("a") and hash(Named("A")) == hash(Named("a"))


def test_replace_and_fields_refuse_other_objects() -> None:
    with pytest.raises(TypeError):
        values.fields(object())
    with pytest.raises(TypeError):
        values.replace(object(), a=1)
    with pytest.raises(ValueError):
        values.field(default=1, default_factory=list)


def test_the_module_imports_nothing() -> None:
    """It is there to keep imports out of start-up: `import dataclasses` among them."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(values))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(n) for n in top] == ["from __future__ import annotations"]
