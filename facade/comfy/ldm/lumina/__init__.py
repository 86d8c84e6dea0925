"""``comfy.ldm.lumina``: ComfyUI's Lumina 2 / NextDiT model code, not in Weft (a model family Weft
does not load); see ``model``."""
