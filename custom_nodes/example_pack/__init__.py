"""Weft's example node pack: one node and one editor extension, as a template for your own.

A pack is a folder in ``custom_nodes/`` whose ``__init__.py`` exports ``NODE_CLASS_MAPPINGS`` (node
name -> class following ComfyUI's V1 protocol), optionally ``NODE_DISPLAY_NAME_MAPPINGS`` and
``WEB_DIRECTORY`` (JavaScript modules the editor imports at start-up). See README.md beside this file.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
