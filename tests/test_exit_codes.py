"""Every exit code the README documents, each reached through the CLI the way a user reaches it."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from contentgen.cli import cli
from contentgen.sample_data import write_sample_data
from tests import responders
from tests.util import REPO

README_CODES = re.search(r"Exit codes[^:]*: (.+?)\n\n", (REPO / "README.md").read_text(encoding="utf-8"), re.S).group(1)
DOCUMENTED = {int(n) for n in re.findall(r"(?:^|,\s*)(\d) ", " ".join(README_CODES.split()))}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_sample_data(tmp_path_factory.mktemp("exit"), 24, seed=2)


def run(data, out, fake, *extra):
    return CliRunner().invoke(cli, ["run", str(data["campaign"]), "--out", str(out), "--base-url", fake.base_url,
                                    "--api-key", "k", *extra])


def _done(tmp_path, data, fake):
    fake.responder = responders.copywriter
    r = run(data, tmp_path / "out", fake)
    assert r.exit_code == 0, r.output
    return tmp_path / "out"


def _copy_data(data, tmp_path):
    import shutil

    d = tmp_path / "data"
    shutil.copytree(data["campaign"].parent, d)
    return {k: d / p.name for k, p in data.items()}


# each scenario: (code, what the user did) -> CliRunner result
def s_done(tmp_path, data, fake):
    fake.responder = responders.copywriter
    return run(data, tmp_path / "out", fake)


def s_already_done(tmp_path, data, fake):
    out = _done(tmp_path, data, fake)
    return run(data, out.parent / "out", fake)


def s_corrupt_store(tmp_path, data, fake):
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.db").write_bytes(b"this is not a database" * 100)
    return run(data, out, fake)


def s_verify_tampered(tmp_path, data, fake):
    out = _done(tmp_path, data, fake)
    with open(out / "messages.jsonl", "a", encoding="utf-8") as fh:
        fh.write("\n")
    return CliRunner().invoke(cli, ["verify", str(out)])


def s_missing_csv_column(tmp_path, data, fake):
    d = _copy_data(data, tmp_path)
    lines = d["members"].read_text(encoding="utf-8").splitlines()
    cols = lines[0].split(",")
    i = cols.index("churn_risk")
    d["members"].write_text("\n".join(",".join(x for j, x in enumerate(line.split(",")) if j != i)
                                      for line in lines) + "\n", encoding="utf-8")
    return run(d, tmp_path / "out", fake)


def s_misspelled_key(tmp_path, data, fake):
    d = _copy_data(data, tmp_path)
    d["campaign"].write_text(d["campaign"].read_text().replace("  catalog:", "  catalogue:"))
    return run(d, tmp_path / "out", fake)


def s_bad_outcomes(tmp_path, data, fake):
    out = _done(tmp_path, data, fake)
    bad = tmp_path / "outcomes.csv"
    lines = data["outcomes"].read_text().splitlines()
    lines[2] = ",".join(lines[2].split(",")[:2] + ["maybe"] + lines[2].split(",")[3:])
    bad.write_text("\n".join(lines) + "\n")
    return CliRunner().invoke(cli, ["report", str(out), "--outcomes", str(bad)])


def s_check_missing_file(tmp_path, data, fake):
    return CliRunner().invoke(cli, ["check", str(tmp_path / "no-such-cases.jsonl")])


def s_check_malformed_lines(tmp_path, data, fake):
    f = tmp_path / "cases.jsonl"
    f.write_text("{not json\n")
    return CliRunner().invoke(cli, ["check", str(f)])


def s_verify_not_a_run(tmp_path, data, fake):
    return CliRunner().invoke(cli, ["verify", str(tmp_path)])


def s_export_not_a_run(tmp_path, data, fake):
    return CliRunner().invoke(cli, ["export", str(tmp_path)])


def s_report_not_a_run(tmp_path, data, fake):
    return CliRunner().invoke(cli, ["report", str(tmp_path), "--outcomes", str(data["outcomes"])])


def s_unknown_option(tmp_path, data, fake):
    return CliRunner().invoke(cli, ["run", str(data["campaign"]), "--out", str(tmp_path), "--colour"])


def s_provider_down(tmp_path, data, fake):
    fake.responder = responders.copywriter
    fake.script([{"status": 503}] * 400)
    return run(data, tmp_path / "out", fake, "--chunk-size", "8")


def s_key_refused(tmp_path, data, fake):
    fake.responder = responders.copywriter
    fake.script([{"status": 401}] * 400)  # the provider refuses the key: the set-up is wrong, members stay pending
    return run(data, tmp_path / "out", fake, "--chunk-size", "8")


def s_inputs_changed(tmp_path, data, fake):
    d = _copy_data(data, tmp_path)
    fake.responder = responders.copywriter
    fake.script([{}] * 4 + [{"status": 503}] * 400)
    assert run(d, tmp_path / "out", fake, "--chunk-size", "4").exit_code == 3  # paused part-way
    fake.reset()
    fake.responder = responders.copywriter
    d["campaign"].write_text(d["campaign"].read_text().replace("top_k: 3", "top_k: 2"))
    return run(d, tmp_path / "out", fake)


def s_max_cost(tmp_path, data, fake):
    fake.responder = responders.copywriter
    return run(data, tmp_path / "out", fake, "--model", "gpt-4o-mini", "--max-cost", "0.0000001")


SCENARIOS = [
    (0, s_done), (0, s_already_done),
    (1, s_corrupt_store), (1, s_verify_tampered),
    (2, s_missing_csv_column), (2, s_misspelled_key), (2, s_bad_outcomes), (2, s_check_missing_file),
    (2, s_check_malformed_lines), (2, s_verify_not_a_run), (2, s_export_not_a_run), (2, s_report_not_a_run),
    (2, s_unknown_option),
    (3, s_provider_down),
    (4, s_inputs_changed),
    (5, s_max_cost),
    (6, s_key_refused),
]


@pytest.mark.parametrize("code,scenario", SCENARIOS, ids=[f"{c}-{f.__name__[2:]}" for c, f in SCENARIOS])
def test_exit_code(code, scenario, data, tmp_path, fake_openai):
    r = scenario(tmp_path, data, fake_openai)
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    if code:
        assert "error" in r.output.lower() or "paused" in r.output or "Usage" in r.output


def test_every_documented_code_is_walked():
    """The README's list and the scenarios above cover the same codes (0 to 6; 130 and 143, the signals,
    are walked in tests/test_stops.py)."""
    assert DOCUMENTED == {0, 1, 2, 3, 4, 5, 6}
    assert {c for c, _ in SCENARIOS} == DOCUMENTED
