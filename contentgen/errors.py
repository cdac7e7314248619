"""One exception tree for contentgen.

ContentgenError                 base; ``exit_code`` 1 (a run failure), printed without a traceback
 ├── ConfigError                 exit 2: a campaign file is wrong (file, key, fix)
 ├── InputFileError              exit 2: an input file cannot be read at all (file, line)
 ├── TemplateError               exit 2: a prompt template is broken (file, line)
 ├── RuleFileError               exit 2: a rule file is broken (file, rule id)
 ├── UsageError                  exit 2: a command pointed at something it cannot use
 │    └── NotARunError           not a (finished) run's output folder (verify, export, report)
 ├── StoreError                  the run store is locked, corrupt or changed
 │    └── ResumeRefused          exit 4: inputs/prompts/rules changed since the run began
 │         └── InputsChanged     exit 4: (freeze.py) an input changed while the run used it
 ├── ProviderUnavailable         exit 3: the LLM provider kept failing: the run pauses
 │    └── ProviderMisconfigured  exit 6: it refuses every request the same way (key, model, URL,
 │                               parameter): the run stops, members stay pending
 ├── BudgetExhausted             exit 5: --max-cost reached: the run pauses
 ├── EngineFailure               exit 1: (outcome.py) most members fail inside the engine: a bug, stop
 └── Interrupted                 exit 130/143: (stops.py) SIGINT/SIGTERM

The README's "Exit codes" line is this tree; tests/test_exit_codes.py walks every code.

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
    exit_code = 2


class TemplateError(ContentgenError):
    exit_code = 2


class UsageError(ContentgenError):
    exit_code = 2


class NotARunError(UsageError):
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
