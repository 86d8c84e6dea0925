"""Model files in and out.

``checkpoint`` (safe reading by content), ``detect`` (family and parts from keys and shapes),
``weights`` (tensors into a meta-device model by name), ``vae_keys`` (diffusers-layout VAEs),
``diffusers_folder`` (diffusers' folder format), ``saving`` (writing models back, patches baked
in), ``merging`` (model merges as lazy weight patches).
"""
