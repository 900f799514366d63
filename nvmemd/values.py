"""Value classes without ``import dataclasses``.

``nvmemd-query get`` runs once per boot step, on CPUs where Python's own
start-up is most of the cost.  ``import dataclasses`` (it loads ``inspect``,
``ast``, ``dis``, ``tokenize``, ``re``) and building each class with it cost
more than the whole rest of a ``get``: 1.6× ``python -c pass`` for the import
and about 0.7 ms per class (benchmarks/RESULTS.md §7).  The modules below the
front ends therefore declare their values with :func:`value`, which is the
part of :func:`dataclasses.dataclass` nvmemd uses:

- fields are the class's annotations, in order, with their defaults;
- :func:`field` takes ``default``, ``default_factory``, ``compare`` and ``repr``;
- ``__init__``, ``__repr__`` and ``__eq__`` as dataclasses writes them, and
  ``__hash__`` and no assignment for :func:`value` classes (``frozen=True``);
  :func:`record` classes are mutable (``@dataclass``), for results being built;
- :func:`replace` and :func:`fields` as in :mod:`dataclasses`.

Type checkers see a dataclass (PEP 681 ``dataclass_transform``).  Front ends
and the daemon, which load ``dataclasses`` anyway, use it directly.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
else:
    def dataclass_transform(**_kwargs):
        return lambda decorated: decorated


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Field:
    """One field of a value class (:class:`dataclasses.Field`'s attributes nvmemd uses)."""

    __slots__ = ("compare", "default", "default_factory", "name", "repr")

    def __init__(self, default: Any = MISSING, default_factory: Callable[[], Any] | None = None,
                 compare: bool = True, repr: bool = True) -> None:
        if default is not MISSING and default_factory is not None:
            raise ValueError("a field has a default or a default_factory, not both")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.compare = compare
        self.repr = repr


def field(*, default: Any = MISSING, default_factory: Callable[[], Any] | None = None,
          compare: bool = True, repr: bool = True) -> Any:
    """As :func:`dataclasses.field`."""
    return Field(default, default_factory, compare, repr)


def _own_fields(cls: type) -> list[Field]:
    """The fields *cls*'s own annotations declare (``ClassVar`` ones are class attributes)."""
    found = []
    # inspect.get_annotations() is what `import inspect` would cost (see above)
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
        if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        declared = cls.__dict__.get(name, MISSING)
        spec = declared if isinstance(declared, Field) else Field(default=declared)
        spec.name = name
        if isinstance(declared, Field):
            # As dataclasses does: the class attribute is the default, or absent.
            if spec.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, spec.default)
        found.append(spec)
    return found


def _init_source(specs: list[Field], frozen: bool) -> tuple[str, dict[str, Any]]:
    """``__init__``'s source, and the names it refers to (defaults and factories)."""
    params, body = [], []
    scope: dict[str, Any] = {"_setattr": object.__setattr__, "_MISSING": MISSING}
    for spec in specs:
        name = spec.name
        if spec.default_factory is not None:
            scope[f"_factory_{name}"] = spec.default_factory
            params.append(f"{name}=_MISSING")
            value_expr = f"_factory_{name}() if {name} is _MISSING else {name}"
        elif spec.default is not MISSING:
            scope[f"_default_{name}"] = spec.default
            params.append(f"{name}=_default_{name}")
            value_expr = name
        else:
            if params and "=" in params[-1]:
                raise TypeError(f"non-default argument {name!r} follows default argument")
            params.append(name)
            value_expr = name
        body.append(f"  _setattr(self, {name!r}, {value_expr})" if frozen
                    else f"  self.{name} = {value_expr}")
    source = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "  pass")
    return source, scope


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen value (:class:`dataclasses.FrozenInstanceError`)."""


def _frozen_setattr(self: object, name: str, _value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _build(cls: type[T], frozen: bool) -> type[T]:
    inherited: list[Field] = []
    for base in reversed(cls.__mro__[1:]):
        inherited.extend(getattr(base, "__value_fields__", ()))
    by_name = {spec.name: spec for spec in (*inherited, *_own_fields(cls))}
    specs = list(by_name.values())
    source, scope = _init_source(specs, frozen)
    exec(source, scope)
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    compared = tuple(spec.name for spec in specs if spec.compare)
    shown = tuple(spec.name for spec in specs if spec.repr)

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in compared)

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
        return f"{self.__class__.__qualname__}({inner})"

    def __hash__(self: Any) -> int:
        return hash(tuple(getattr(self, n) for n in compared))

    methods: dict[str, object] = {
        "__value_fields__": tuple(specs),
        "__match_args__": tuple(spec.name for spec in specs),
        "__init__": init,
        "__repr__": __repr__,
        "__eq__": __eq__,
        # frozen: hashed by its fields; mutable and compared: unhashable (as dataclasses)
        "__hash__": __hash__ if frozen else None,
    }
    if frozen:
        methods["__setattr__"] = _frozen_setattr
        methods["__delattr__"] = _frozen_delattr
    own = cls.__dict__
    # As dataclasses: what the class writes itself stays (a __hash__ of None is the one
    # Python adds to a class that defines __eq__, not the class's own).
    explicit_hash = own.get("__hash__") is not None
    for name, method in methods.items():
        if name in own and (name != "__hash__" or explicit_hash):
            if name in ("__setattr__", "__delattr__"):
                raise TypeError(f"cannot overwrite {name} in frozen class {cls.__name__}")
            continue
        setattr(cls, name, method)
    return cls


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def value(cls: type[T]) -> type[T]:
    """A frozen value class: ``@dataclass(frozen=True)``."""
    return _build(cls, frozen=True)


@dataclass_transform(field_specifiers=(field, Field))
def record(cls: type[T]) -> type[T]:
    """A mutable value class (a result being built up): ``@dataclass``."""
    return _build(cls, frozen=False)


def fields(instance: object) -> tuple[Field, ...]:
    """As :func:`dataclasses.fields`."""
    try:
        specs: tuple[Field, ...] = instance.__value_fields__  # type: ignore[attr-defined]
    except AttributeError:
        raise TypeError("fields() takes a value class or instance") from None
    return specs


def replace(instance: T, /, **changes: Any) -> T:
    """As :func:`dataclasses.replace`: a copy of *instance* with *changes*."""
    for spec in fields(instance):
        if spec.name not in changes:
            changes[spec.name] = getattr(instance, spec.name)
    return instance.__class__(**changes)
