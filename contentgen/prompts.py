"""Prompt rendering: Jinja templates in a sandbox, member text only ever as data.

``ImmutableSandboxedEnvironment`` + ``StrictUndefined``: a template that uses an
unknown variable, or a broken template, is a ``TemplateError`` naming the file
and line, raised before any model call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .config import Campaign
from .errors import TemplateError
from .models import Draft, Member, Plan
from .scrub import own_names, scrub_instructions, scrub_notes

REQUIRED_TEMPLATES = ("system.j2", "message.j2", "explanation.j2", "repair.j2")


def segment_slug(segment: str) -> str:
    return segment.lower().replace(" ", "-")


def sanitize_member_text(text: str, member: Member | None = None) -> str:
    """Member-supplied text goes in a delimited block: no delimiters, no control or invisible characters,
    no personal data (e-mails, phones, addresses, card and account numbers, names), at most 300 characters."""
    own = own_names(member.first_name, member.email) if member is not None else ()
    return scrub_notes(text, own=own)


@dataclass
class PromptPair:
    system: str
    user: str
    example: tuple[str, str] | None = None  # (user, assistant) worked example, part of the static prefix

    def messages(self) -> list[dict[str, str]]:
        out = [{"role": "system", "content": self.system}]
        if self.example:
            out += [{"role": "user", "content": self.example[0]}, {"role": "assistant", "content": self.example[1]}]
        return out + [{"role": "user", "content": self.user}]


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, its attribute check remembered per (type, attribute name).

    ``is_safe_attribute`` answers from the attribute's name and ``isinstance`` checks of the object alone
    (private or internal attribute, a method that modifies a list, dict, set or deque), so the answer for one
    type and name holds for every object of that type; an object whose ``__class__`` is not its type is
    checked each time. The sandbox refuses exactly what it refused before (``tests/test_cpu_paths.py``)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._safe: dict[tuple[type, str], bool] = {}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        cls = type(obj)
        if obj.__class__ is not cls or attr.__class__ is not str:
            return super().is_safe_attribute(obj, attr, value)
        key = (cls, attr)
        safe = self._safe.get(key)
        if safe is None:
            if len(self._safe) >= 4096:
                self._safe.clear()
            safe = self._safe[key] = super().is_safe_attribute(obj, attr, value)
        return safe


class Prompts:
    def __init__(self, prompts_dir: Path, campaign: Campaign):
        self.dir = Path(prompts_dir)
        self.campaign = campaign
        self._system: str | None = None
        self.env = _Sandbox(
            loader=jinja2.FileSystemLoader(str(self.dir)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
        )
        for name in REQUIRED_TEMPLATES + tuple(v.template for v in campaign.variants):
            self._template(name)
        for seg_file in sorted((self.dir / "fallback").rglob("*.j2")):  # basic and personal fallbacks
            self._template(seg_file.relative_to(self.dir).as_posix())
        self._example = self.example()
        from .fallback import FallbackWriter

        self.fallbacks = FallbackWriter(self)

    def _template(self, name: str) -> jinja2.Template:
        try:
            return self.env.get_template(name)
        except jinja2.TemplateNotFound:
            raise TemplateError(f"prompt template {name} not found", file=str(self.dir / name),
                                hint=f"restore {name} in the prompts folder") from None
        except jinja2.TemplateSyntaxError as e:
            raise TemplateError(f"template syntax error: {e.message}", file=e.filename or str(self.dir / name),
                                line=e.lineno, hint="fix the Jinja syntax at that line") from None

    def _render(self, name: str, **ctx: Any) -> str:
        tpl = self._template(name)
        try:
            return tpl.render(**ctx).strip()
        except jinja2.UndefinedError as e:
            raise TemplateError(f"template uses an undefined variable: {e.message}", file=str(self.dir / name),
                                hint="use only the variables documented in prompts/README.md") from None
        except jinja2.TemplateError as e:
            raise TemplateError(f"template failed to render: {e}", file=str(self.dir / name)) from None

    def example(self) -> tuple[str, str] | None:
        path = self.dir / "example.yaml"
        if not path.exists():
            return None
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            plan, answer = raw["plan"], raw["answer"]
        except (yaml.YAMLError, KeyError, TypeError) as e:
            raise TemplateError(f"example.yaml needs 'plan' and 'answer' ({e})", file=str(path)) from None
        user = self._render("message.j2", framing=plan["framing"], tier=plan["tier"], segment=plan["segment"],
                            products=plan["products"], offers=plan.get("offers") or [], notes=plan.get("notes") or "",
                            channel="email")
        return user, json.dumps(answer, ensure_ascii=False)

    def system(self) -> str:
        """The static system prompt: it depends on the brand only, so it is rendered once per run."""
        if self._system is None:
            self._system = self._render("system.j2", brand=self.campaign.brand)
        return self._system

    def build(self, plan: Plan) -> PromptPair:
        """The prompt for one planned member: no PII, tier-filtered evidence only."""
        member = plan.member
        notes = sanitize_member_text(member.stated_preferences, member) if member.opt_in_tier >= 2 else ""
        template = next((v.template for v in self.campaign.variants if v.name == plan.variant), "message.j2")
        user = self._render(
            template,
            framing=plan.framing,
            tier=member.opt_in_tier,
            segment=member.segment,
            products=[{"product": pp.product, "evidence": pp.evidence, "offer": pp.offer} for pp in plan.products],
            offers=list(plan.offers),
            notes=notes,
            channel=plan.channel,
        )
        return PromptPair(self.system(), user, self._example)

    def repair(self, instructions: str, plan: Plan | None = None) -> str:
        """The repair turn. Findings quote the assembled message, where the engine filled in the member's
        name: it goes back to the model as ``{first_name}`` (a surname as ``[surname]``), and contact
        details and long numbers are taken out. Product names are quoted as they are."""
        if plan is not None:
            m = plan.member
            text = scrub_instructions(instructions, first=m.first_name, others=own_names("", m.email),
                                      keep=[pp.product.name for pp in plan.products])
        else:
            text = scrub_instructions(instructions)
        return self._render("repair.j2", instructions=text)

    def render(self, name: str, **ctx: Any) -> str:
        return self._render(name, **ctx)

    def split_fallback(self, name: str, text: str) -> tuple[str, str, str]:
        """A fallback template's text as (subject, preheader, body)."""
        head, _, body = text.partition("\n")
        pre, _, body = body.partition("\n")
        if not head.startswith("Subject:") or not pre.startswith("Preheader:"):
            raise TemplateError("a fallback template must start with 'Subject:' and 'Preheader:' lines",
                                file=str(self.dir / name), line=1)
        return head[len("Subject:"):].strip(), pre[len("Preheader:"):].strip(), body.strip()

    def fallback(self, plan: Plan) -> Draft:
        """The pre-approved, human-written tier-1 message for the member's segment."""
        name = f"fallback/{segment_slug(plan.member.segment)}.j2"
        text = self._render(name, products=[{"product": pp.product} for pp in plan.products],
                            segment=plan.member.segment)
        subject, preheader, body = self.split_fallback(name, text)
        if plan.channel != "email":  # push, SMS, in-app: the same human-written title and one-liner
            return Draft(subject=subject, preheader=preheader, body=preheader, explanations=())
        return Draft(subject=subject, preheader=preheader, body=body, explanations=())
