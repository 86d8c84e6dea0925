"""ComfyUI's ``comfy.options``: whether ``comfy.cli_args`` parses ``sys.argv``.

In Weft it never does (``args`` reads the server's own parsed flags), so the switch is kept for
packs that flip it and changes nothing.
"""

args_parsing = False


def enable_args_parsing(enable=True):
    global args_parsing
    args_parsing = enable
