"""The text side of the engine: CLIP tokenizer, prompt weighting, CLIP / OpenCLIP text encoders."""
