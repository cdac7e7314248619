"""Where rule kinds, named checks and shared per-message analyses are registered.

A kind is a module in ``gates/engine/kinds/``, a check a module in ``gates/checks/``: each class
names itself (``name = "facts.prices"``) and :func:`load_plugins` imports every module of both
packages and registers the named classes, so a new kind or check is one new file. (Not a class
decorator: the compiled gates' kinds and checks are native classes, which mypyc keeps undecorated;
:func:`kind` and :func:`check` register a class defined elsewhere, such as a test's.)
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .plugin import Check, Kind

K = TypeVar("K", bound="type[Kind]")
C = TypeVar("C", bound="type[Check]")

KINDS: dict[str, type[Kind]] = {}
CHECKS: dict[str, type[Check]] = {}
#: name -> function of a message view, run at most once per message (``view.analysis(name)``)
ANALYSES: dict[str, Callable[..., Any]] = {}


def kind(name: str) -> Callable[[K], K]:
    def deco(cls: K) -> K:
        cls.name = name
        KINDS[name] = cls
        return cls
    return deco


def check(name: str) -> Callable[[C], C]:
    def deco(cls: C) -> C:
        cls.name = name
        CHECKS[name] = cls
        return cls
    return deco


F = TypeVar("F", bound=Callable[..., Any])


def analysis(name: str) -> Callable[[F], F]:
    def deco(fn: F) -> F:
        ANALYSES[name] = fn
        return fn
    return deco


_LOADED = False


def load_plugins() -> None:
    """Import every kind and check module and register the kinds and checks they name."""
    global _LOADED
    if _LOADED:
        return
    from .. import checks
    from . import kinds
    from .plugin import Check, Kind

    for pkg in (kinds, checks):
        for info in pkgutil.iter_modules(pkg.__path__):
            # <module>_models: the pydantic models of a kind or check, imported by that module
            if info.name.startswith("_") or info.name.endswith("_models"):
                continue
            mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
            for obj in vars(mod).values():  # the classes that name themselves (``name = "..."``)
                if not isinstance(obj, type) or obj.__module__ != mod.__name__:
                    continue
                if issubclass(obj, Kind) and obj.name:
                    KINDS[obj.name] = obj
                elif issubclass(obj, Check) and obj.name:
                    CHECKS[obj.name] = obj
    _LOADED = True
