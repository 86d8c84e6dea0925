"""The conditioning stages of the paper's own LDMs (CompVis' ``cond_stage_model``) that are not
text encoders: the class embedder (and ImageNet's class names), the layout encoder's stage (and the
layout widget's JSON), the semantic map's spatial rescaler, the empty stage of unconditional
models, and the images concatenated to the UNet's input."""
