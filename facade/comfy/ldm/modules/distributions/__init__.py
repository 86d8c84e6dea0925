"""``comfy.ldm.modules.distributions``: the autoencoder's posterior."""
