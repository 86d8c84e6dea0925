"""LoRA and LoCon on the UNet and the text encoders.

``patches`` (LoRA files in kohya, diffusers and PEFT naming read into weight patches, applied and
removed bit-exactly; the ``WeightPatch`` every weight edit uses) and ``bypass`` (the same adapters
run as a forward-pass bypass, leaving the weights untouched).
"""
