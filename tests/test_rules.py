"""Rule packs: every rule's own examples, and broken rule files."""

from __future__ import annotations

from pathlib import Path

import pytest

from contentgen.errors import RuleFileError
from contentgen.gates import load_rules
from tests.examples import example_case

RULES = load_rules()


def _cases():
    for cr in RULES:
        for i, ex in enumerate(cr.rule.examples.fail):
            yield pytest.param(cr.id, ex, True, id=f"{cr.id}-fail{i}")
        for i, ex in enumerate(cr.rule.examples.pass_):
            yield pytest.param(cr.id, ex, False, id=f"{cr.id}-pass{i}")


@pytest.mark.parametrize("rule_id,example,should_fire", list(_cases()))
def test_rule_examples(rule_id, example, should_fire):
    cr = RULES.get(rule_id)
    msg, ctx = example_case(cr.rule, example)
    findings = RULES.run_rule(cr, msg, ctx)
    fired = [f for f in findings if f.rule_id == rule_id]
    if should_fire:
        assert fired, f"{rule_id} did not fire on fail example {example!r}"
        assert all(f.gate == cr.rule.gate for f in fired)
    else:
        assert not fired, f"{rule_id} fired on pass example {example!r}: {[f.excerpt for f in fired]}"


def test_every_rule_has_examples_of_both_kinds():
    missing = [cr.id for cr in RULES if not cr.rule.examples.fail or not cr.rule.examples.pass_]
    assert not missing, f"rules without fail and pass examples: {missing}"


def test_rule_ids_are_namespaced_by_gate():
    for cr in RULES:
        assert cr.id.split(".")[0] == cr.rule.gate, cr.id


GOOD = """family: t
rules:
  - id: brand.t-ok
    gate: brand
    severity: error
    message: "x"
    fix: "y"
    kind: existence
    tokens: [foo]
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    d = tmp_path / "rules"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text, encoding="utf-8")
    return d


def test_bad_regex_names_file_rule_and_line(tmp_path):
    d = _write(tmp_path, "bad.yaml", GOOD + """  - id: brand.t-bad
    gate: brand
    severity: error
    message: "x"
    fix: "y"
    kind: regex
    pattern: 'foo(bar'
""")
    with pytest.raises(RuleFileError) as e:
        load_rules([d])
    text = str(e.value)
    assert "bad.yaml:16" in text and "brand.t-bad" in text and "regex" in text and "pattern" in text


def test_bad_check_params_are_the_rule_files_error_at_load(tmp_path):
    d = _write(tmp_path, "params.yaml", GOOD + """  - id: facts.t-claims
    gate: facts
    severity: error
    message: "x"
    fix: "y"
    kind: check
    check: facts.claims
    params:
      negations: [not]
      claims:
        - {pattern: 'water(proof', supported_by: [waterproof]}
""")
    with pytest.raises(RuleFileError) as e:
        load_rules([d])
    text = str(e.value)
    assert "params.yaml:17" in text and "facts.t-claims" in text and "params" in text


def test_unknown_key_is_an_error(tmp_path):
    d = _write(tmp_path, "unk.yaml", GOOD.replace("    tokens: [foo]\n", "    tokens: [foo]\n    tokns: [bar]\n"))
    with pytest.raises(RuleFileError) as e:
        load_rules([d])
    assert "unk.yaml:10" in str(e.value) and "brand.t-ok" in str(e.value) and "unknown key" in str(e.value)


def test_duplicate_id_across_files(tmp_path):
    _write(tmp_path, "a.yaml", GOOD)
    d = _write(tmp_path, "b.yaml", GOOD)
    with pytest.raises(RuleFileError) as e:
        load_rules([d])
    assert "duplicate rule id 'brand.t-ok'" in str(e.value) and "b.yaml" in str(e.value) and "a.yaml:3" in str(e.value)


def test_unknown_kind(tmp_path):
    d = _write(tmp_path, "k.yaml", GOOD.replace("kind: existence", "kind: vibes"))
    with pytest.raises(RuleFileError) as e:
        load_rules([d])
    assert "k.yaml" in str(e.value) and "brand.t-ok" in str(e.value) and "kind" in str(e.value)


def test_unknown_check_name(tmp_path):
    d = _write(tmp_path, "c.yaml", GOOD.replace("kind: existence\n    tokens: [foo]", "kind: check\n    check: no.such"))
    with pytest.raises(RuleFileError) as e:
        load_rules([d])
    assert "unknown check 'no.such'" in str(e.value) and "c.yaml:3" in str(e.value)


def test_kind_without_its_fields(tmp_path):
    d = _write(tmp_path, "m.yaml", GOOD.replace("    tokens: [foo]\n", ""))
    with pytest.raises(RuleFileError) as e:
        load_rules([d])
    assert "needs tokens" in str(e.value)


def test_invalid_yaml_reports_line(tmp_path):
    d = _write(tmp_path, "y.yaml", GOOD + "  - id: [unclosed\n")
    with pytest.raises(RuleFileError) as e:
        load_rules([d])
    assert "y.yaml" in str(e.value) and "YAML" in str(e.value)


def test_load_rules_is_cached():
    assert load_rules() is load_rules()


def test_custom_rule_dir_runs(tmp_path):
    d = _write(tmp_path, "ok.yaml", GOOD)
    rs = load_rules([d])
    assert [cr.id for cr in rs] == ["brand.t-ok"]


def test_spans_within_keeps_the_spans_an_outer_span_holds():
    import random

    from contentgen.gates.text import spans_within

    rnd = random.Random(3)
    for _ in range(3000):
        pts = sorted(rnd.sample(range(80), rnd.randint(0, 12) * 2))
        spans = [(pts[i], pts[i + 1]) for i in range(0, len(pts), 2)]
        pts = sorted(rnd.sample(range(80), rnd.randint(0, 8) * 2))
        outer = [(pts[i], pts[i + 1]) for i in range(0, len(pts), 2)]
        assert spans_within(spans, outer) == [(a, b) for a, b in spans if any(x <= a and b <= y for x, y in outer)]
