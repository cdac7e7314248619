"""Campaign configuration: a YAML (or TOML) file validated into pydantic models.

A bad campaign file stops the run before any model call, with the file, the key
and the fix.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Inputs(_Strict):
    members: Path
    recommendations: Path
    catalog: Path
    offers: Path
    suppression: tuple[Path, ...] = ()


class Brand(_Strict):
    program: str = "AthenaPlus"
    sender: str = "Athena Retail Group"
    signoff: str = "— The AthenaPlus team"
    postal_address: str = "400 Market Street, Suite 200, Portland, OR 97204, USA"
    allowed_domains: tuple[str, ...] = ("athena.example", "athenaplus.example")
    cta_text: str = "Shop your picks"
    cta_url: str = "https://athenaplus.example/picks"
    product_url: str = "https://athenaplus.example/p/{product_id}"
    unsubscribe_url: str = "https://athenaplus.example/unsubscribe?t={token}"
    preferences_url: str = "https://athenaplus.example/preferences"
    privacy_dashboard_url: str = "https://athenaplus.example/privacy"


class LLMSettings(_Strict):
    model: str = "embedded"
    base_url: str | None = None
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=400, ge=16)
    timeout_s: float = Field(default=60.0, gt=0)
    concurrency: int = Field(default=8, ge=1)
    max_retries: int = Field(default=4, ge=0)
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    structured_output: Literal["auto", "json_schema", "json_object"] = "auto"
    outage_after: int = Field(default=8, ge=1, description="consecutive transport failures before pausing")


class Selection(_Strict):
    """Campaign rules for what may be recommended (on top of affinity rank and stock)."""

    margin_floor: float | None = Field(default=None, ge=0.0, le=1.0)
    max_per_category: int = Field(default=2, ge=1)
    max_name_similarity: int = Field(default=85, ge=0, le=100, description="rapidfuzz token_set_ratio")
    exclude_recently_bought: bool = True
    exclude_returned: bool = True


class Variant(_Strict):
    """A prompt or framing variant of an experiment; members are assigned by a hash of member and campaign."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    weight: float = Field(gt=0)
    template: str = "message.j2"  # in the prompts folder
    framings: str | None = None  # another framing table in the prompts folder


class LeverCells(_Strict):
    """Per-lever holdout cells (``contentgen/levers.py``): shares of the members outside the global holdout
    who get everything except one lever, assigned by a hash of campaign and member."""

    content: float = Field(default=0.0, ge=0.0, le=0.25, description="personalized copy -> the segment template")
    timing: float = Field(default=0.0, ge=0.0, le=0.25, description="best send time -> the segment default")
    channel: float = Field(default=0.0, ge=0.0, le=0.25, description="preferred channel -> email")
    offer: float = Field(default=0.0, ge=0.0, le=0.25, description="offers -> none")

    @model_validator(mode="after")
    def _total(self) -> LeverCells:
        if self.content + self.timing + self.channel + self.offer > 0.5 + 1e-9:
            raise ValueError("lever cells may take at most half of the members together")
        return self


class FairnessMargins(_Strict):
    """How far a group's rate may differ from the rest of the members before the audit flags it (absolute)."""

    outcome: float = Field(default=0.03, gt=0, le=1, description="open, click and purchase rates")
    fallback: float = Field(default=0.05, gt=0, le=1)
    rejection: float = Field(default=0.02, gt=0, le=1)
    offer: float = Field(default=0.10, gt=0, le=1)
    opt_out: float = Field(default=0.005, gt=0, le=1)
    calibration: float = Field(default=0.05, gt=0, le=1, description="observed - predicted churn rate")


class Fairness(_Strict):
    margins: FairnessMargins = FairnessMargins()
    min_n: int = Field(default=100, ge=1, description="groups smaller than this are shown, never flagged")


class Price(_Strict):
    """USD per 1M tokens."""

    input: float = Field(ge=0)
    cached_input: float = Field(ge=0)
    output: float = Field(ge=0)


#: List prices (USD per 1M tokens) as configured; a campaign can override or add models.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(input=0.15, cached_input=0.075, output=0.60),
    "gpt-4.1-mini": Price(input=0.40, cached_input=0.10, output=1.60),
    "gpt-4.1-nano": Price(input=0.10, cached_input=0.025, output=0.40),
    "smollm2-135m-instruct": Price(input=0.0, cached_input=0.0, output=0.0),
}


class Campaign(_Strict):
    campaign_id: str = Field(min_length=1)
    name: str = ""
    send_date: dt.date
    inputs: Inputs
    top_k: int = Field(default=3, ge=1, le=10)
    holdout_share: float = Field(default=0.05, ge=0.0, le=0.5)
    holdout_message: Literal["basic", "none"] = "basic"
    max_repairs: int = Field(default=2, ge=0, le=5)
    on_exhausted: Literal["fallback", "review"] = "fallback"
    hero_product_id: str | None = None
    channels: tuple[Literal["email", "push", "sms", "inapp"], ...] = ("email", "push", "sms", "inapp")
    variants: tuple[Variant, ...] = ()
    selection: Selection = Selection()
    levers: LeverCells = LeverCells()
    fairness: Fairness = Fairness()
    min_age: int = 16
    brand: Brand = Brand()
    llm: LLMSettings = LLMSettings()
    prompts_dir: Path = Path("prompts")
    rules_dirs: tuple[Path, ...] = (Path("brand_rules"), Path("compliance"))
    prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    batch_discount: float = Field(default=0.5, ge=0.0, le=1.0, description="Batch API price multiplier")
    expected_output_tokens: int = Field(default=180, ge=1, description="for dry-run cost estimates")
    source: Path | None = None

    def price_for(self, model: str | None) -> Price | None:
        if not model:
            return None
        if model in self.prices:
            return self.prices[model]
        for name, price in self.prices.items():  # dated snapshots: gpt-4o-mini-2024-07-18
            if model.startswith(name):
                return price
        return None

    @field_validator("campaign_id")
    @classmethod
    def _safe_id(cls, v: str) -> str:
        if any(c in v for c in "/\\\n"):
            raise ValueError("must not contain slashes or newlines")
        return v


_FIX = {
    "missing": "add this key to the campaign file",
    "extra_forbidden": "remove it or check its spelling against README 'Campaign file'",
    "date_from_datetime_parsing": "write the date as YYYY-MM-DD",
    "date_parsing": "write the date as YYYY-MM-DD",
    "date_type": "write the date as YYYY-MM-DD",
}


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def load_campaign(path: str | Path) -> Campaign:
    """Read and validate a campaign file; relative paths resolve against its folder."""
    path = Path(path)
    if not path.exists():
        raise ConfigError("campaign file not found", file=str(path),
                          hint="pass the path of a campaign .yaml (contentgen sample-data DIR writes one)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"campaign file is not UTF-8 ({e.reason} at byte {e.start})", file=str(path),
                          hint="save the file as UTF-8") from None
    try:
        raw: Any = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise ConfigError(f"campaign file is not valid YAML: {getattr(e, 'problem', e)}", file=str(path),
                          line=None if line is None else line + 1, hint="fix the YAML syntax at that line") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"campaign file is not valid TOML: {e}", file=str(path)) from None
    if not isinstance(raw, dict):
        raise ConfigError("campaign file must be a mapping of keys", file=str(path),
                          hint="see README 'Campaign file' for an example")
    try:
        campaign = Campaign.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        fix = _FIX.get(err["type"], "correct the value")
        more = f" (and {len(e.errors()) - 1} more problem(s))" if len(e.errors()) > 1 else ""
        raise ConfigError(f"{err['msg']}{more}", file=str(path), key=key, hint=fix) from None
    base = path.resolve().parent
    root = _repo_root()

    def rel(p: Path, fallback_root: Path) -> Path:
        if p.is_absolute():
            return p
        cand = base / p
        return cand if cand.exists() else fallback_root / p

    inputs = campaign.inputs
    resolved = Inputs(
        members=rel(inputs.members, base),
        recommendations=rel(inputs.recommendations, base),
        catalog=rel(inputs.catalog, base),
        offers=rel(inputs.offers, base),
        suppression=tuple(rel(p, base) for p in inputs.suppression),
    )
    for key in ("members", "recommendations", "catalog", "offers"):
        p = getattr(resolved, key)
        if not p.exists():
            raise ConfigError(f"input file not found: {p}", file=str(path), key=f"inputs.{key}",
                              hint="point it at an existing CSV, Parquet or JSONL file (relative to the campaign file)")
    for p in resolved.suppression:
        if not p.exists():
            raise ConfigError(f"suppression list not found: {p}", file=str(path), key="inputs.suppression",
                              hint="point it at an existing file of member ids or email hashes, one per line")
    prompts_dir = rel(campaign.prompts_dir, root)
    if not prompts_dir.is_dir():
        raise ConfigError(f"prompts folder not found: {prompts_dir}", file=str(path), key="prompts_dir",
                          hint="point it at a folder of Jinja templates (the repo's prompts/ by default)")
    names = [v.name for v in campaign.variants]
    if len(names) != len(set(names)):
        raise ConfigError("variant names must be unique", file=str(path), key="variants",
                          hint="give every variant its own name")
    for i, v in enumerate(campaign.variants):
        for key in ("template", "framings"):
            name = getattr(v, key)
            if name and not (prompts_dir / name).is_file():
                raise ConfigError(f"variant {v.name!r}: {name} not found in {prompts_dir}", file=str(path),
                                  key=f"variants.{i}.{key}", hint="add the file to the prompts folder or fix the name")
    rules_dirs = tuple(rel(p, root) for p in campaign.rules_dirs)
    for p in rules_dirs:
        if not p.is_dir():
            raise ConfigError(f"rules folder not found: {p}", file=str(path), key="rules_dirs",
                              hint="point it at folders of YAML rule files (brand_rules/, compliance/)")
    return campaign.model_copy(update={"inputs": resolved, "prompts_dir": prompts_dir,
                                       "rules_dirs": rules_dirs, "source": path.resolve()})
