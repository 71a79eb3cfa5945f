"""Releasing a finished session's namespace, so that what the session made is freed at once.

A function or class defined in a session holds the namespace as its globals, and the
namespace holds the function: a reference cycle. Without help, everything the session
created (a database connection, an open file, a large list) then waits for the host's
garbage collector, which may run late or, in a host that tuned it, never.

At the end of a session the namespace is cleared, which breaks those cycles, unless
something outside it may still run code in it: a function it defined that the service
keeps, an instance (or subclass) of a class it defined that lives elsewhere, a thread or
task still running its code, anything else that holds the namespace itself. Then it is
left whole, for the garbage collector, because clearing it would make that code fail with
a ``NameError``.
"""

from __future__ import annotations

import gc
import sys
from types import FunctionType
from typing import Any

__all__ = ["release_namespace"]


def release_namespace(namespace: dict[str, Any]) -> bool:
    """Clear ``namespace`` if nothing outside it still uses it; true if cleared.

    The caller passes its only reference (it keeps none after the call)."""
    functions, classes = _made_in(namespace)
    # References the namespace should have: this frame's, getrefcount's, the caller's, and
    # one per function defined in it. More means something else holds it (running code, a
    # function or frame kept elsewhere); fewer is an interpreter that counts differently.
    probe: dict[str, Any] = {}
    expected = sys.getrefcount(probe) + 1 + len(functions)
    if sys.getrefcount(namespace) != expected:
        return False
    # A function defined in it has one reference from its place (the namespace or its
    # class), one from `functions`, and those of the check itself: measured on a probe
    # held the same way. More means the service keeps it, or it is running.
    probe_function = FunctionType(_references.__code__, {})
    places, probes = {"probe": probe_function}, [probe_function]
    del probe_function
    baseline = max(_references(probe) for probe in probes)
    del places
    if any(_references(function) > baseline for function in functions):
        return False
    if classes and _classes_held_elsewhere(classes, namespace, functions):
        return False
    namespace.clear()
    return True


def _made_in(namespace: dict[str, Any]) -> tuple[list[FunctionType], list[type]]:
    """The functions whose globals are ``namespace``, as values of it or as methods of the
    classes defined in it; and those classes."""
    functions: list[FunctionType] = []
    classes: list[type] = []
    for value in namespace.values():
        if isinstance(value, FunctionType) and value.__globals__ is namespace:
            functions.append(value)
        elif isinstance(value, type) and _defined_in(value, namespace):
            classes.append(value)
            for attribute in vars(value).values():
                for function in _functions_of(attribute):
                    if function.__globals__ is namespace:
                        functions.append(function)
    return functions, classes


def _defined_in(cls: type, namespace: dict[str, Any]) -> bool:
    return cls.__module__ == namespace.get("__name__") and cls.__qualname__ in namespace


def _functions_of(attribute: object) -> list[FunctionType]:
    if isinstance(attribute, staticmethod | classmethod):
        attribute = attribute.__func__
    parts = (
        (attribute.fget, attribute.fset, attribute.fdel)
        if isinstance(attribute, property)
        else (attribute,)
    )
    return [part for part in parts if isinstance(part, FunctionType)]


def _references(value: object) -> int:
    return sys.getrefcount(value)


def _classes_held_elsewhere(
    classes: list[type], namespace: dict[str, Any], functions: list[FunctionType]
) -> bool:
    """Whether anything but the namespace, the classes' own parts (their MRO tuples,
    descriptors, ``__class__`` cells of their methods) and instances kept in the namespace
    refers to one of ``classes``. (This walks the host's objects once: it costs only a
    session that defined a class.)"""
    defined = set(classes)
    allowed = {id(value) for value in namespace.values() if type(value) in defined}
    allowed |= {id(namespace), id(classes), id(functions), id(defined)}
    allowed |= {id(cls) for cls in classes}  # a subclass defined there too
    for cls in classes:
        allowed.add(id(cls.__mro__))
        allowed.add(id(cls.__bases__))
        allowed |= {id(attribute) for attribute in vars(cls).values()}
    for function in functions:
        allowed |= {id(cell) for cell in function.__closure__ or ()}
    # The call's own argument tuple is a referrer too on 3.13: pass one that is allowed
    # (a tuple given with * is passed as it is).
    targets = tuple(classes)
    allowed.add(id(targets))
    referrers = gc.get_referrers(*targets)
    try:
        return any(
            id(referrer) not in allowed and not _is_frame_of_this_module(referrer)
            for referrer in referrers
        )
    finally:
        del referrers


def _is_frame_of_this_module(referrer: object) -> bool:
    code = getattr(referrer, "f_code", None)
    return code is not None and code.co_filename == __file__
