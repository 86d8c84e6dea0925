"""Litegraph UI workflows (what the editors save and PNGs carry) and their conversion into the
API prompt the executor runs. Standard library only.

- :func:`workflow_to_prompt` — UI workflow (schema 0.4 or 1, subgraphs) -> ``(prompt, warnings)``;
- :func:`extract_workflow_from_png_text` — the ``workflow`` / ``prompt`` JSON of PNG text chunks;
- :func:`is_ui_workflow` — tells a UI workflow from an API prompt;
- :class:`WorkflowError` — what cannot be converted, naming the node.

The formats and rules are written down in docs/workflow-format.md.
"""

from .convert import workflow_to_prompt
from .errors import WorkflowError
from .model import is_ui_workflow
from .png_text import extract_workflow_from_png_text

__all__ = ["WorkflowError", "extract_workflow_from_png_text", "is_ui_workflow", "workflow_to_prompt"]
