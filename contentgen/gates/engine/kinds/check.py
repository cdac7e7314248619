"""``kind: check``: a named check (``gates/checks/``) with its typed ``params``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..findings import Hit
from ..model import Rule
from ..plugin import Build, Check, Kind
from ..registry import CHECKS
from .check_models import CheckSpec

if TYPE_CHECKING:
    from ..view import MessageView


class UnknownCheck(ValueError):
    pass


class BadParams(ValueError):
    pass


class CheckKind(Kind):
    name = "check"
    Spec = CheckSpec
    spec: CheckSpec

    def __init__(self, rule: Rule, spec: CheckSpec, build: Build) -> None:
        super().__init__(rule, spec, build)
        cls = CHECKS.get(spec.check)
        if cls is None:
            raise UnknownCheck(f"unknown check '{spec.check}' (known: {', '.join(sorted(CHECKS))})")
        try:
            params = cls.Params.model_validate(spec.params)
            self.impl: Check = cls(params, build)
        except UnknownCheck:
            raise
        except Exception as e:  # noqa: BLE001 - any bad param is the rule file's error
            raise BadParams(f"bad params for check '{spec.check}': {_describe(e)}") from e
        self.needs = self.impl.needs

    def hits(self, view: MessageView) -> Iterable[Hit]:
        return self.impl.run(self.rule, view)


def _describe(e: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(e, ValidationError):
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(params)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        return f"{msg} at 'params.{loc}'"
    return str(e)
