"""Training latent diffusion models from scratch (Rombach et al. 2022), in two stages.

``autoencoder.train_autoencoder`` (stage 1, with ``calibrate_latents``), then
``diffusion.encode_dataset`` + ``diffusion.train_diffusion`` (stage 2), ``export.write_checkpoint``
for an SD1-layout file the loaders read; ``evaluate`` scores a shapes model; ``starter`` is the
recipe of the shipped model. Configuration lives in ``config``.

Beside them, for ComfyUI's training nodes: ``lora_trainer`` trains a LoRA on an existing UNet,
``datasets`` holds the dataset nodes' image and training-set operations, ``loss_graph`` draws a
loss curve.
"""
