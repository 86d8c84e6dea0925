"""``comfy.ldm.flux``: ComfyUI's Flux model code, not in Weft (a model family Weft does not load).

Packs import helpers from here at module level to patch Flux / Wan attention (KJNodes imports
``comfy.ldm.flux.math.apply_rope``); the names exist so such packs load their other nodes, and
raise :class:`_weft_absent.NotInWeftError` when used.
"""
