"""One exception tree for contentgen.

ContentgenError                 base; ``exit_code`` 1, printed without a traceback
 ├── ConfigError                 a campaign file is wrong (file, key, fix)
 ├── InputFileError              an input file cannot be read at all (file, line)
 ├── TemplateError               a prompt template is broken (file, line)
 ├── RuleFileError               a rule file is broken (file, rule id)
 ├── StoreError                  the run store is locked, corrupt or changed
 │    └── ResumeRefused          inputs/prompts/rules changed since the run began (exit 4)
 │         └── InputsChanged     (freeze.py) an input changed while the run used it (exit 4)
 ├── ProviderUnavailable         the LLM provider kept failing: the run pauses (exit 3)
 │    └── ProviderMisconfigured  it refuses every request the same way (key, model, URL,
 │                               parameter): the run stops (exit 6), members stay pending
 ├── BudgetExhausted             --max-cost reached: the run pauses (exit 5)
 ├── EngineFailure               (outcome.py) most members fail inside the engine: a bug, stop
 └── Interrupted                 (stops.py) SIGINT/SIGTERM (exit 130/143)

Row-level problems are not exceptions: they are quarantine records.
A gate finding is a record (``models.Finding``), not an exception.
"""

from __future__ import annotations


class ContentgenError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None, hint: str | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file:
            where = str(self.file)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        text = f"{where}{self.message}"
        if self.key:
            text += f" (key: {self.key})"
        if self.hint:
            text += f"\n  fix: {self.hint}"
        return text


class ConfigError(ContentgenError):
    exit_code = 2


class InputFileError(ContentgenError):
    pass


class TemplateError(ContentgenError):
    pass


class RuleFileError(ContentgenError):
    exit_code = 2


class StoreError(ContentgenError):
    pass


class ResumeRefused(StoreError):
    exit_code = 4


class ProviderUnavailable(ContentgenError):
    exit_code = 3


class ProviderMisconfigured(ProviderUnavailable):
    """The provider refused request after request the same way: the run's set-up is wrong, not the content.

    Members stay pending (nobody goes to fallback); fix the set-up and re-run the same command.
    """

    exit_code = 6


class BudgetExhausted(ContentgenError):
    exit_code = 5
