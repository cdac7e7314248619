"""Campaign configuration: a YAML (or TOML) file validated into pydantic models.

A bad campaign file stops the run before any model call, with the file, the key
and the fix.
"""

from __future__ import annotations

import datetime as dt
import difflib
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args

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
    max_field_chars: int = Field(default=100_000, ge=1_000, le=100_000_000,
                                 description="a longer value quarantines its row (file, line, field)")


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


class Tracking(_Strict):
    """Query parameters added to every product link and the call to action (e-mail, push, in-app; SMS links
    stay short). Values may use {campaign_id}, {variant}, {channel} and {product_id} ('' on the CTA); a
    parameter whose value is empty is left out."""

    enabled: bool = True
    utm_source: str = "athenaplus"
    utm_medium: str = "{channel}"
    utm_campaign: str = "{campaign_id}"
    utm_content: str = "{variant}"
    utm_term: str = ""
    member_param: str = Field(default="mh", pattern=r"^[A-Za-z0-9_.-]*$",
                              description="name of the member-hash parameter ('' to leave it out)")
    extra: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_placeholders(self) -> Tracking:
        vals = {"campaign_id": "", "variant": "", "channel": "", "product_id": ""}
        for key in ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", *self.extra):
            value = getattr(self, key) if key.startswith("utm_") else self.extra[key]
            try:
                value.format_map(vals)
            except (KeyError, ValueError, IndexError) as e:
                raise ValueError(f"{key}: {value!r} uses an unknown placeholder ({e}); use {{campaign_id}}, "
                                 "{variant}, {channel} or {product_id}") from None
        return self


class Links(_Strict):
    """Where the secret that signs unsubscribe links comes from (never the campaign file itself)."""

    secret_env: str = Field(default="CONTENTGEN_LINK_SECRET", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                            description="environment variable holding the secret")
    secret_file: Path | None = Field(default=None, description="or a file holding it (a mounted secret)")


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
    structured_output: Literal["auto", "json_schema", "json_object", "prompt"] = "auto"
    outage_after: int = Field(default=8, ge=1, description="consecutive transport failures before pausing")
    misconfig_after: int = Field(default=3, ge=1, description="consecutive identical refusals before stopping")
    api_version: str | None = Field(default=None, description="Azure OpenAI api-version (deployment URLs)")
    azure: bool | None = Field(default=None, description="None: recognized from the base URL")
    transport: Literal["direct", "sdk"] = "direct"
    shared_budget: Path | str | None = Field(default=None, description="one RPM/TPM budget for every shard process "
                                             "that names it: a SQLite file (one machine) or a postgresql:// URL")
    budget_headroom: float = Field(default=0.99, gt=0.5, le=1.0, description="share of rpm/tpm paced to")

    @field_validator("shared_budget", mode="before")
    @classmethod
    def _budget_file_or_url(cls, v: Any) -> Any:
        # a postgresql:// URL stays a string; anything else is a SQLite file path
        if isinstance(v, str) and not v.startswith(("postgresql://", "postgres://")):
            return Path(v)
        return v
    batch_queued_tokens: int | None = Field(default=None, ge=1000, description="the account's enqueued-token "
                                                                               "limit for this model")
    batch_resubmits: int = Field(default=2, ge=0, description="new batches for requests a batch did not answer")
    batch_live_fallback: bool = Field(default=False, description="send what the batches could not answer live, "
                                                                 "at full price")


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
    tracking: Tracking = Tracking()
    links: Links = Links()
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


#: llm keys that change how requests travel, not what is written: a paused run resumes after they change
OPERATIONAL_LLM_KEYS = frozenset({"timeout_s", "concurrency", "max_retries", "rpm", "tpm", "outage_after",
                                  "misconfig_after", "transport", "shared_budget", "budget_headroom",
                                  "batch_queued_tokens", "batch_resubmits", "batch_live_fallback"})


def campaign_hash(campaign: Campaign) -> str:
    """SHA-256 of everything in the campaign that decides the output (not the operational llm keys)."""
    import hashlib
    import json

    data = campaign.model_dump(mode="json", exclude={"source": True, "llm": set(OPERATIONAL_LLM_KEYS)})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def require_price(campaign: Campaign, model: str | None) -> Price:
    """The model's price, or a ConfigError (exit 2) that says how to add one (``--max-cost`` needs it)."""
    price = campaign.price_for(model)
    if price is None:
        raise ConfigError(
            f"--max-cost needs a price for model {model!r} (a model alias or Azure deployment name is not in the "
            f"price table: {', '.join(sorted(campaign.prices))})", file=str(campaign.source or "campaign"),
            key="prices",
            hint=f"add its price (USD per 1M tokens) to the campaign file: "
                 f"prices: {{{model}: {{input: 0.15, cached_input: 0.075, output: 0.60}}}} "
                 "(a campaign's prices replace the defaults: list every model you use)")
    return price


_FIX = {
    "missing": "add this key to the campaign file",
    "extra_forbidden": "remove it or check its spelling against README 'Campaign file'",
    "date_from_datetime_parsing": "write the date as YYYY-MM-DD",
    "date_parsing": "write the date as YYYY-MM-DD",
    "date_type": "write the date as YYYY-MM-DD",
}


def _unwrap(annotation: Any) -> Any:
    """tuple[Variant, ...] -> Variant, dict[str, Price] -> Price, X | None -> X: the model inside, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        got = _unwrap(arg)
        if got is not None:
            return got
    return None


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys a campaign file may have at ``loc`` (list indexes and dict keys skipped)."""
    model: type[BaseModel] = Campaign
    for part in loc:
        field = model.model_fields.get(str(part)) if not isinstance(part, int) else None
        nxt = _unwrap(field.annotation) if field is not None else None
        if nxt is not None:
            model = nxt
    return [k for k in model.model_fields if k != "source"]


def _yaml_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line of the key at ``loc`` in a YAML file (1-based), or of its nearest parent found."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            hit = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if hit is None:
                break
            line, node = hit[0].start_mark.line + 1, hit[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _config_error(e: ValidationError, path: Path, text: str) -> ConfigError:
    """Every problem of a campaign file, typos first: a misspelled key ('catalogue:') also shows up as the
    missing key it meant ('catalog'); that is one problem, told as 'did you mean', with its line."""
    errors = e.errors()
    missing = {tuple(x["loc"]) for x in errors if x["type"] == "missing"}
    problems: list[tuple[int, str, int | None, str, str]] = []  # (rank, key, line, message, fix)
    explained: set[tuple[Any, ...]] = set()
    is_yaml = path.suffix != ".toml"
    for x in errors:
        loc = tuple(x["loc"])
        if x["type"] != "extra_forbidden":
            continue
        name, parent = str(loc[-1]), loc[:-1]
        known = _known_keys(parent)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        line = _yaml_line(text, loc) if is_yaml else None
        if close:
            explained.add(parent + (close[0],))
            problems.append((0, ".".join(map(str, loc)), line, f"unknown key {name!r}; did you mean {close[0]!r}?",
                             f"rename {name!r} to {close[0]!r}"))
        else:
            problems.append((1, ".".join(map(str, loc)), line, f"unknown key {name!r}",
                             "remove it or check its spelling; keys here: " + ", ".join(known)))
    for x in errors:
        loc = tuple(x["loc"])
        if x["type"] == "extra_forbidden" or loc in explained:
            continue
        line = _yaml_line(text, loc if x["type"] != "missing" else loc[:-1]) if is_yaml else None
        msg = x["msg"] if x["type"] != "missing" else "required key is missing"
        if x["type"] not in ("missing",) and "input" in x and not isinstance(x["input"], (dict, list)):
            msg += f" (got {x['input']!r})"
        problems.append((2, ".".join(map(str, loc)), line, msg, _FIX.get(x["type"], "correct the value")))
    problems.sort(key=lambda p: p[0])
    rank, key, line, msg, fix = problems[0]
    if len(problems) > 1:
        more = "; ".join(f"{k}{f' (line {ln})' if ln else ''}: {m}" for _, k, ln, m, _ in problems[1:])
        msg += f" (and {len(problems) - 1} more: {more})"
    return ConfigError(msg, file=str(path), line=line, key=key, hint=fix)


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
        raise _config_error(e, path, text) from None
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
        max_field_chars=inputs.max_field_chars,
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
    llm = campaign.llm
    if isinstance(llm.shared_budget, Path) and not llm.shared_budget.is_absolute():
        llm = llm.model_copy(update={"shared_budget": base / llm.shared_budget})
    rules_dirs = tuple(rel(p, root) for p in campaign.rules_dirs)
    for p in rules_dirs:
        if not p.is_dir():
            raise ConfigError(f"rules folder not found: {p}", file=str(path), key="rules_dirs",
                              hint="point it at folders of YAML rule files (brand_rules/, compliance/)")
    links = campaign.links
    if links.secret_file is not None:
        links = links.model_copy(update={"secret_file": rel(links.secret_file, base)})
    return campaign.model_copy(update={"inputs": resolved, "prompts_dir": prompts_dir, "links": links,
                                       "rules_dirs": rules_dirs, "llm": llm, "source": path.resolve()})
