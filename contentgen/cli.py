"""The ``contentgen`` command line: a thin layer over the library.

A user mistake (a ContentgenError) prints one clear message and exits with its
code; it never shows a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .errors import ContentgenError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ContentgenError as e:
            click.secho(f"error: {e.render()}", fg="red", err=True)
            ctx.exit(e.exit_code)


@click.group(cls=_Group)
@click.version_option(package_name="contentgen")
def cli() -> None:
    """Personalized loyalty emails, written by an LLM and gated before they leave."""


@cli.command("check")
@click.argument("cases", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="one JSON verdict a line on stdout")
@click.option("--rules", "rules_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="rule folders (default: the repo's brand_rules/ and compliance/)")
def check_cmd(cases: Path, as_json: bool, rules_dirs: tuple[Path, ...]) -> None:
    """Run the four gates on labelled cases (contracts/check-cases.md); never calls a model."""
    from .check import check_cases

    code = check_cases(cases, as_json=as_json, rules_dirs=rules_dirs or None, out=sys.stdout)
    sys.exit(code)


@cli.command("rules")
@click.option("--json", "as_json", is_flag=True)
def rules_cmd(as_json: bool) -> None:
    """List every rule with id, gate, severity and message."""
    from .check import print_rules

    print_rules(as_json=as_json, out=sys.stdout)


def main() -> None:
    cli(prog_name="contentgen")


if __name__ == "__main__":
    main()
