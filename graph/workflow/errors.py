"""The one error the workflow conversion raises."""

from __future__ import annotations


class WorkflowError(ValueError):
    """A UI workflow cannot be turned into an API prompt. The message names the node (id and
    type) wherever one is to blame, so a script's user can find it in the editor."""
