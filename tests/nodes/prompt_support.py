"""Running a prompt through validation and the executor, for node tests that go end to end."""

from __future__ import annotations

from graph.executor import Executor
from graph.validation import validate_prompt


def run_prompt(registry, prompt: dict, services=None):
    """The outcome of a prompt that must validate and run to success (the errors say why not)."""
    result = validate_prompt(prompt, registry)
    assert result.ok, result.node_errors
    outcome = Executor(registry, services=services).execute("p", result.prompt, result.outputs)
    assert outcome.status == "success", outcome.messages
    return outcome
