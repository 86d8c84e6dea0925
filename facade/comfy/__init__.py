"""ComfyUI's ``comfy`` package as node packs import it: thin translations onto Weft's objects."""
