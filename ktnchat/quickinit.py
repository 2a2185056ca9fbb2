# A faster __init__ for the frozen dataclasses made once or more per chat message.
#
# Rules:
# - `quick_init` goes outside `@dataclass(frozen=True)` and replaces only __init__: the
#   one dataclasses writes sets each field with object.__setattr__ (the class's own
#   __setattr__ refuses); this one stores the same values in the instance's __dict__,
#   which is where object.__setattr__ puts them, then calls __post_init__ as before.
#   Equality, hashing, repr, replace() and the refusal to assign afterwards are untouched.
# - Same signature and defaults (default_factory called per instance, as dataclasses
#   does). Classes with init=False fields, InitVar or keyword-only fields are refused at
#   import time rather than handled halfway.
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Type, TypeVar

T = TypeVar("T")


def quick_init(cls: Type[T]) -> Type[T]:
    """Give the frozen dataclass `cls` an __init__ that writes its __dict__ directly."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen:
        raise TypeError(f"{cls.__name__}: quick_init is for frozen dataclasses")
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: a class with __slots__ has no __dict__")
    names = getattr(cls, "__dataclass_fields__", {})
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if len(fields) != len(names):  # InitVar / ClassVar pseudo-fields
        raise TypeError(f"{cls.__name__}: InitVar fields are not supported")
    namespace: Dict[str, Any] = {"__quick_missing__": dataclasses.MISSING}
    args: List[str] = []
    body: List[str] = ["    __quick_dict__ = __quick_self__.__dict__"]
    for field in fields:
        if not field.init or getattr(field, "kw_only", False) is True:
            raise TypeError(f"{cls.__name__}.{field.name}: only plain init fields")
        name = field.name
        if field.default is not dataclasses.MISSING:
            namespace[f"__quick_default_{name}__"] = field.default
            args.append(f"{name}=__quick_default_{name}__")
            body.append(f"    __quick_dict__[{name!r}] = {name}")
        elif field.default_factory is not dataclasses.MISSING:
            namespace[f"__quick_factory_{name}__"] = field.default_factory
            args.append(f"{name}=__quick_missing__")
            body.append(
                f"    __quick_dict__[{name!r}] = "
                f"__quick_factory_{name}__() if {name} is __quick_missing__ else {name}"
            )
        else:
            args.append(name)
            body.append(f"    __quick_dict__[{name!r}] = {name}")
    if hasattr(cls, "__post_init__"):
        body.append("    __quick_self__.__post_init__()")
    # Local and global names are dunders no field can have (dataclasses does the same).
    source = f"def __init__(__quick_self__, {', '.join(args)}):\n" + "\n".join(body) + "\n"
    exec(source, namespace)  # the same technique dataclasses itself uses
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    setattr(cls, "__init__", init)  # noqa: B010  (mypy refuses assigning a method)
    return cls
