"""The README stays true: its campaign example loads, and its commands exist."""

from __future__ import annotations

import re

import yaml
from click.testing import CliRunner

from contentgen.cli import cli
from contentgen.config import load_campaign
from contentgen.sample_data import write_sample_data
from tests.util import REPO

README = (REPO / "README.md").read_text()


def test_readme_campaign_example_loads(tmp_path):
    block = re.search(r"## Campaign file\n\n```yaml\n(.*?)```", README, re.S).group(1)
    paths = write_sample_data(tmp_path, 30)
    raw = yaml.safe_load(block)
    assert raw["inputs"]["members"] == "members.csv"
    (tmp_path / "campaign.yaml").write_text(block)
    c = load_campaign(tmp_path / "campaign.yaml")
    assert c.variants[1].template == "message_warm.j2" and c.inputs.members == paths["members"].resolve()


def test_readme_commands_exist():
    code = "\n".join(re.findall(r"```(?:bash)?\n(.*?)```", README, re.S))
    commands = set(re.findall(r"^contentgen ([a-z-]+)", code, re.M))
    assert {"run", "check", "demo", "serve", "merge", "verify", "report"} <= commands
    for name in commands:
        r = CliRunner().invoke(cli, [name, "--help"])
        assert r.exit_code == 0, (name, r.output)
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    assert blocks[0].strip() == "bash scripts/setup.sh && .venv/bin/contentgen demo --members 20"
    assert blocks[1].strip() == ".venv/bin/python -m pytest -q"
    ci = (REPO / ".ci" / "run").read_text()
    assert ".venv/bin/python -m pytest -q" in ci
