"""``comfy.ldm.models``: whole models (``autoencoder``)."""
