"""ldm.patches.tome: bipartite soft matching (tomesd) on the self-attention queries."""

from __future__ import annotations

import torch

from ldm.patches.tome import TomePatches, bipartite_soft_matching_2d
from tests.ldm.patches.conftest import run_unet


def options(tome: TomePatches) -> dict:
    return {"patches": {"attn1_patch": [tome.split], "attn1_output_patch": [tome.merge]}}


def test_no_tokens_to_remove_is_the_identity():
    x = torch.randn(1, 16, 4)
    merge, unmerge = bipartite_soft_matching_2d(x, 4, 4, 2, 2, 0)
    assert merge(x) is x and unmerge(x) is x


def test_duplicated_tokens_merge_into_their_destination_and_come_back():
    # a 4x4 map of four 2x2 cells; each cell holds one value four times: every source matches its
    # own cell's destination exactly, so merging all 12 sources loses nothing
    values = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    cells = torch.arange(16).reshape(4, 4)
    cell_of = (cells // 4 // 2) * 2 + (cells % 4) // 2
    x = values[cell_of.flatten()][None]
    merge, unmerge = bipartite_soft_matching_2d(x, 4, 4, 2, 2, 12, torch.Generator().manual_seed(3))
    merged = merge(x)
    assert merged.shape == (1, 4, 6)
    torch.testing.assert_close(torch.sort(merged[0], dim=0).values, torch.sort(values, dim=0).values)
    torch.testing.assert_close(unmerge(merged), x)


def test_merging_averages_the_most_similar_source_into_its_match():
    x = torch.tensor([[[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]])  # a 2x2 map, one cell
    merge, unmerge = bipartite_soft_matching_2d(x, 2, 2, 2, 2, 1)  # destination: token 0
    merged = merge(x)
    assert merged.shape == (1, 3, 2)
    torch.testing.assert_close(merged[0, -1], (x[0, 0] + x[0, 1]) / 2)  # token 1 is most like token 0
    restored = unmerge(merged)
    torch.testing.assert_close(restored[0, 1], restored[0, 0])
    torch.testing.assert_close(restored[0, 2:], x[0, 2:])


def test_ratio_zero_is_the_plain_unet_and_merging_changes_it(sd1_unet):
    plain = run_unet(sd1_unet)
    torch.testing.assert_close(run_unet(sd1_unet, options(TomePatches(0.0))), plain)
    merged = run_unet(sd1_unet, options(TomePatches(0.5)))
    assert (merged - plain).abs().max() > 1e-3 and torch.isfinite(merged).all()
    torch.testing.assert_close(run_unet(sd1_unet, options(TomePatches(0.5))), merged)  # reproducible
