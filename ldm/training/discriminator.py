"""The patch discriminator of stage 1 (PatchGAN: Isola et al. 2017; as used by Esser et al.
2021 and the latent-diffusion autoencoders): a small conv net that scores overlapping patches
real or reconstructed, so the decoder is pushed towards sharp, locally plausible images without
a pretrained perceptual network. Training-only; it is never saved into a model file."""

from __future__ import annotations

import torch
from torch import nn

from ldm.training.init import initialise


class PatchDiscriminator(nn.Module):
    """Three stride-2/1 4x4 convs with LeakyReLU (and GroupNorm after the first), one logit per
    patch: ``[B, 3, H, W]`` -> ``[B, 1, H/4 - 2, W/4 - 2]``; each logit sees a 34-pixel patch."""

    def __init__(self, channels: int = 32):
        super().__init__()
        c = channels
        self.layers = nn.Sequential(
            nn.Conv2d(3, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.GroupNorm(8, 2 * c), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 4 * c, 4, stride=1, padding=1), nn.GroupNorm(8, 4 * c), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * c, 1, 4, stride=1, padding=1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


def new_discriminator(channels: int, seed: int) -> PatchDiscriminator:
    discriminator = PatchDiscriminator(channels)
    initialise(discriminator, torch.Generator().manual_seed(seed))
    return discriminator


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return 0.5 * (torch.relu(1.0 - real_logits).mean() + torch.relu(1.0 + fake_logits).mean())


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()


def adaptive_weight(reconstruction_loss: torch.Tensor, adversarial_loss: torch.Tensor,
                    last_layer: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale * |grad rec| / |grad adv|`` at the decoder's last layer (Esser et al. 2021, eq. 7),
    so neither loss drowns the other whatever their magnitudes."""
    rec_grad, = torch.autograd.grad(reconstruction_loss, last_layer, retain_graph=True)
    adv_grad, = torch.autograd.grad(adversarial_loss, last_layer, retain_graph=True)
    weight = rec_grad.norm() / (adv_grad.norm() + 1e-4)
    return (weight.clamp(0.0, 1e4) * scale).detach()
