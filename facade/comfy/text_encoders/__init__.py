"""``comfy.text_encoders``: ComfyUI's text-encoder modules, for packs that import their classes.

Weft's text encoders are its CLIP handles (SD1.x, SD2.x, SDXL); what packs read these modules for
is ``isinstance(clip.cond_stage_model, SD3ClipModel)``-style checks and class names to subclass.
``sd2_clip`` holds SD2's classes (text-encoder classes Weft's CLIP does not use, as in
``comfy.sd1_clip``); ``sd3_clip``, ``flux`` and ``t5`` are the encoders of model families Weft does
not load. Every class is real and subclassable, matches no Weft object, and raises
:class:`_weft_absent.NotInWeftError` when constructed; the functions raise when called.
"""
