"""Reading rule folders: rule files (``*.yaml`` with ``rules:``), vocabularies (``vocab/*.txt``)
and the accept list (``accept.yaml``). A broken file is a :class:`RuleFileError` naming
``path:line`` and the rule id; nothing is half-loaded.

A rule file holds one rule family::

    family: superlatives
    rules:
      - id: brand.superlatives
        gate: brand
        severity: error
        message: "'{excerpt}' is an absolute claim; describe what the product does instead"
        fix: remove the superlative and describe a concrete benefit
        kind: existence
        tokens: [best, greatest, "#1"]
        exceptions: [best-selling]
        examples: {fail: ["The best socks ever."], pass: ["Socks for longer runs."]}

A list may name a vocabulary instead of listing its words (``{vocab: product-nouns}``, alone or
as one item of a list), and a regex may hold one as an alternation (``'celebrate {{vocab:occasions}}'``).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, get_args

import yaml
import pydantic.main  # noqa: F401  (mypyc's C for this module needs it imported by name)
from pydantic import BaseModel, ValidationError

from ...errors import RuleFileError
from ...models import Channel
from .accept import AcceptEntry, Accepted, AcceptList
from .model import COMMON_KEYS, Rule
from .plugin import Build, Vocab
from .registry import KINDS, load_plugins

#: libyaml's safe loader when PyYAML was built with it (the rule files are read at every start)
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CHANNELS = frozenset(get_args(Channel))


def _compose_lines(text: str, top: str) -> list[int | None]:
    """1-based line of each item of the top-level list ``top`` (empty when not found)."""
    try:
        node = yaml.compose(text, Loader=_YAML_LOADER)
    except yaml.YAMLError:
        return []
    if node is None or not isinstance(node, yaml.MappingNode):
        return []
    for k, v in node.value:
        if getattr(k, "value", None) == top and isinstance(v, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in v.value]
    return []


def _key_line(text: str, item_line: int | None, key: str) -> int | None:
    if item_line is None:
        return None
    lines = text.splitlines()
    for i in range(item_line - 1, min(len(lines), item_line + 400)):
        if re.match(rf"^\s*(?:-\s+)?{re.escape(key)}\s*:", lines[i]):
            return i + 1
        if i > item_line - 1 and re.match(r"^\s*-\s+(?:id|phrase|pattern)\s*:", lines[i]):
            break
    return item_line


def _read_yaml(path: Path) -> tuple[str, Any]:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RuleFileError(f"cannot read rule file: {e}", file=file) from e
    try:
        return text, yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise RuleFileError(f"not valid YAML: {getattr(e, 'problem', e)}", file=file,
                            line=mark.line + 1 if mark else None) from e


def _validation_error(e: ValidationError, what: str, file: str, text: str, line: int | None,
                      key: str | None, prefix: str = "") -> RuleFileError:
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    top = str(err["loc"][0]) if err["loc"] else ""
    msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    where = f" at '{prefix}{loc}'" if loc else ""
    return RuleFileError(f"{what}: {msg}{where}", file=file, line=_key_line(text, line, top) if top else line,
                         key=key)


# --------------------------------------------------------------------------- vocabularies

def read_vocab(folders: list[Path]) -> tuple[Vocab, list[Path]]:
    lists: dict[str, tuple[str, ...]] = {}
    files: dict[str, str] = {}
    paths: list[Path] = []
    for d in folders:
        vd = d / "vocab"
        if not vd.is_dir():
            continue
        for f in sorted(vd.glob("*.txt")):
            name = f.stem
            if name in lists:
                raise RuleFileError(f"vocabulary '{name}' is defined twice (first in {files[name]})", file=str(f),
                                    hint="give each vocabulary file a unique name across the rule folders")
            entries = []
            for raw in f.read_text(encoding="utf-8").splitlines():
                s = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
                if s:
                    entries.append(s)
            lists[name] = tuple(entries)
            files[name] = str(f)
            paths.append(f)
    return Vocab(lists, files), paths


_VOCAB_SLOT = re.compile(r"\{\{vocab:([\w-]+)\}\}")


def _resolve_vocab(value: Any, vocab: Vocab) -> Any:
    """Replace every ``{vocab: NAME}`` with the named list, and every ``{{vocab:NAME}}`` inside a
    string (a regex) with the alternation of its entries."""
    if isinstance(value, dict):
        if set(value) == {"vocab"} and isinstance(value["vocab"], str):
            return list(vocab.get(value["vocab"]))
        return {k: _resolve_vocab(v, vocab) for k, v in value.items()}
    if isinstance(value, list):
        out: list[Any] = []
        for v in value:
            if isinstance(v, dict) and set(v) == {"vocab"} and isinstance(v["vocab"], str):
                out.extend(vocab.get(v["vocab"]))  # a vocabulary spliced into a list
            else:
                out.append(_resolve_vocab(v, vocab))
        return out
    if isinstance(value, str) and "{{vocab:" in value:
        return _VOCAB_SLOT.sub(lambda m: "(?:" + "|".join(vocab.get(m.group(1))) + ")", value)
    return value


# --------------------------------------------------------------------------- accept list

def read_accept(path: Path) -> list[Accepted]:
    text, data = _read_yaml(path)
    file = str(path)
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("accept"), list) or set(data) - {"accept", "description"}:
        raise RuleFileError("an accept list is a mapping with an 'accept' list (and an optional 'description')",
                            file=file, line=1)
    lines = _compose_lines(text, "accept")
    out = []
    for i, raw in enumerate(data["accept"]):
        line = lines[i] if i < len(lines) else None
        try:
            entry = AcceptEntry.model_validate(raw)
        except ValidationError as e:
            raise _validation_error(e, f"accept entry #{i + 1}", file, text, line, None) from e
        try:
            out.append(Accepted(entry, file, line))
        except re.error as e:
            raise RuleFileError(f"accept entry #{i + 1}: bad regex: {e}", file=file, line=line) from e
    return out


# --------------------------------------------------------------------------- rule files

def compile_rule(raw: dict[str, Any], file: str, text: str, line: int | None, build: Build, index: int) -> Any:
    from .ruleset import CompiledRule
    from .kinds.check import BadParams, UnknownCheck

    rid = str(raw.get("id", f"#{index + 1}"))
    common = {k: v for k, v in raw.items() if k in COMMON_KEYS}
    own = {k: v for k, v in raw.items() if k not in COMMON_KEYS}
    try:
        rule = Rule.model_validate({**common, "spec": {}})
    except ValidationError as e:
        raise _validation_error(e, f"rule '{rid}'", file, text, line, rid) from e
    if rule.when is not None and rule.when.channel is not None:
        bad = [c for c in rule.when.channel if c not in CHANNELS]
        if bad:
            raise RuleFileError(f"rule '{rid}': unknown channel(s) {', '.join(bad)} in 'when' "
                                f"(known: {', '.join(sorted(CHANNELS))})", file=file,
                                line=_key_line(text, line, "when"), key=rid)
    cls = KINDS.get(rule.kind)
    if cls is None:
        raise RuleFileError(f"rule '{rid}': unknown kind '{rule.kind}' (known: {', '.join(sorted(KINDS))})",
                            file=file, line=_key_line(text, line, "kind"), key=rid)
    for k in list(own):
        try:
            own[k] = _resolve_vocab(own[k], build.vocab)
        except KeyError as e:
            raise RuleFileError(f"rule '{rid}': {e.args[0]}", file=file, line=_key_line(text, line, k),
                                key=rid) from e
    try:
        spec: BaseModel = cls.Spec.model_validate(own)
    except ValidationError as e:
        raise _validation_error(e, f"rule '{rid}'", file, text, line, rid) from e
    rule = rule.model_copy(update={"spec": own})
    try:
        impl = cls(rule, spec, build)
    except UnknownCheck as e:
        raise RuleFileError(f"rule '{rid}': {e}", file=file, line=line, key=rid) from e
    except BadParams as e:
        raise RuleFileError(f"rule '{rid}': {e}", file=file, line=_key_line(text, line, "params"), key=rid,
                            hint="fix the rule's params (see its check's Params in contentgen/gates/checks/)") from e
    except re.error as e:
        where = next((k for k in ("pattern", "tokens", "exceptions", "swap") if k in own), "")
        raise RuleFileError(f"rule '{rid}': bad regex in '{where}': {e}", file=file,
                            line=_key_line(text, line, where) if where else line, key=rid,
                            hint="fix the pattern (YAML single quotes keep backslashes)") from e
    except ValueError as e:
        where = next((k for k in ("pattern", "tokens", "exceptions", "swap") if k in own), "")
        raise RuleFileError(f"rule '{rid}': {e}", file=file, line=_key_line(text, line, where) if where else line,
                            key=rid) from e
    return CompiledRule(rule=rule, file=file, line=line, impl=impl)


def read_rule_file(path: Path, build: Build) -> list[Any]:
    file = str(path)
    text, data = _read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RuleFileError("a rule file is a mapping with a 'rules' list", file=file, line=1)
    unknown = set(data) - {"family", "description", "rules"}
    if unknown:
        raise RuleFileError(f"unknown top-level key(s): {', '.join(sorted(unknown))}", file=file, line=1)
    lines = _compose_lines(text, "rules")
    out = []
    for i, raw in enumerate(data["rules"]):
        line = lines[i] if i < len(lines) else None
        if not isinstance(raw, dict):
            raise RuleFileError(f"rule #{i + 1}: each rule is a mapping", file=file, line=line)
        out.append(compile_rule(raw, file, text, line, build, i))
    return out


def rule_files(folders: list[Path]) -> tuple[list[Path], list[Path], list[Path]]:
    """(rule files, vocabulary files, accept lists) of the folders, in load order."""
    rules: list[Path] = []
    accept: list[Path] = []
    for d in folders:
        if not d.is_dir():
            raise RuleFileError("rule folder does not exist", file=str(d),
                                hint="point it at a folder of YAML rule files (brand_rules/, compliance/)")
        for f in sorted(list(d.glob("*.yaml")) + list(d.glob("*.yml"))):
            (accept if f.stem == "accept" else rules).append(f)
    # word lists (*.txt) and the data files checks read from vocab/ (*.yaml): both are what the rule set is
    vocab = sorted(f for d in folders if (d / "vocab").is_dir() for pat in ("*.txt", "*.yaml")
                   for f in (d / "vocab").glob(pat))
    return rules, vocab, accept


def digest(paths: list[Path]) -> str:
    """SHA-256 over the files' names and contents: what the rule set is."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\x00")
        h.update(p.read_bytes())
        h.update(b"\x01")
    return h.hexdigest()


def load_folders(folders: list[Path], backend: str | None = None) -> Any:
    from .matcher import PatternTable
    from .ruleset import RuleSet

    load_plugins()
    files, vocab_files, accept_files = rule_files(folders)
    vocab, _ = read_vocab(folders)
    build = Build(PatternTable(), vocab)
    compiled: list[Any] = []
    seen: dict[str, Any] = {}
    for f in files:
        for cr in read_rule_file(f, build):
            if cr.id in seen:
                first = seen[cr.id]
                raise RuleFileError(f"duplicate rule id '{cr.id}' (first defined in {first.file}:{first.line})",
                                    file=cr.file, line=cr.line, key=cr.id)
            seen[cr.id] = cr
            compiled.append(cr)
    accepted: list[Accepted] = []
    for f in accept_files:
        accepted.extend(read_accept(f))
    return RuleSet(rules=tuple(compiled), files=tuple(str(f) for f in files + vocab_files + accept_files),
                   build=build, accept=AcceptList(accepted), digest=digest(files + vocab_files + accept_files),
                   backend=backend)
