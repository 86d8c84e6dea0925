"""The conditioning stages of the paper's own LDMs (CompVis' ``cond_stage_model``) that are not
text encoders: the class embedder, the semantic map's spatial rescaler, the empty stage of
unconditional models, and the images concatenated to the UNet's input."""
