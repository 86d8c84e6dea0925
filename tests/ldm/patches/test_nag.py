"""ldm.patches.nag: Normalized Attention Guidance (arXiv 2505.21179) on the attention output."""

from __future__ import annotations

import torch

from ldm.patches.nag import nag_output_patch


def test_positive_half_follows_the_paper_and_negative_half_is_kept():
    g = torch.Generator().manual_seed(0)
    out = torch.randn(4, 5, 6, generator=g)  # [negative x2, positive x2] in the batch
    scale, alpha, tau = 5.0, 0.5, 1.5
    got = nag_output_patch(scale, alpha, tau)(out.clone(), {"cond_or_uncond": [1, 0]})
    z_neg, z_pos = out[:2], out[2:]
    for b in range(2):
        for t in range(5):  # per token, written out from the paper
            extrapolated = scale * z_pos[b, t] - (scale - 1) * z_neg[b, t]
            ratio = extrapolated.abs().sum() / z_pos[b, t].abs().sum()
            normalised = extrapolated * min(float(ratio), tau) / ratio
            torch.testing.assert_close(got[2 + b, t], alpha * normalised + (1 - alpha) * z_pos[b, t])
    torch.testing.assert_close(got[:2], z_neg)


def test_neutral_settings_and_one_sided_batches_change_nothing():
    out = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(nag_output_patch(5.0, 0.0, 1.5)(out, {"cond_or_uncond": [0, 1]}), out)
    torch.testing.assert_close(nag_output_patch(1.0, 1.0, 1.5)(out, {"cond_or_uncond": [0, 1]}), out)
    assert nag_output_patch(5.0, 0.5, 1.5)(out, {"cond_or_uncond": [0, 0]}) is out
    assert nag_output_patch(5.0, 0.5, 1.5)(out, {}) is out
