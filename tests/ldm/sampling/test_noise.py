import math

import pytest
import torch

from ldm.sampling.noise import BrownianNoiseSampler, StepNoiseSampler, prepare_noise


@pytest.mark.parametrize("seed", [0, 1, 42, 2 ** 32 + 7, 0xFFFFFFFFFFFFFFFF])
def test_start_noise_is_bit_identical_to_manual_seed_randn(seed):
    latent = torch.zeros(2, 4, 8, 8)
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    expected = torch.randn(2, 4, 8, 8)
    torch.set_rng_state(state)
    assert torch.equal(prepare_noise(latent, seed), expected)


def test_prepare_noise_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    prepare_noise(torch.zeros(1, 4, 4, 4), 123, batch_index=[3, 1])
    StepNoiseSampler(torch.zeros(1, 4, 4, 4), 123)()
    assert torch.equal(torch.get_rng_state(), before)


def test_batch_index_item_k_equals_the_kth_sequential_draw():
    latent = torch.zeros(4, 4, 8, 8)
    whole = prepare_noise(latent, 77, batch_index=[0, 1, 2, 3])
    generator = torch.Generator().manual_seed(77)
    draws = [torch.randn(1, 4, 8, 8, generator=generator) for _ in range(6)]
    for k in range(4):
        assert torch.equal(whole[k:k + 1], draws[k])
        # Item k sampled alone (a one-image LATENT with batch_index [k]) gets the same noise.
        assert torch.equal(prepare_noise(torch.zeros(1, 4, 8, 8), 77, batch_index=[k]), draws[k])
    # Indices may skip, come out of order and repeat.
    picked = prepare_noise(torch.zeros(3, 4, 8, 8), 77, batch_index=[5, 2, 5])
    assert torch.equal(picked, torch.cat([draws[5], draws[2], draws[5]]))


def test_batch_index_draws_differ_from_one_whole_batch_draw():
    # Documented ComfyUI behaviour: per-item draws of [1, C, h, w] equal the whole-batch draw,
    # since randn fills a contiguous tensor in order; check we keep that equivalence.
    latent = torch.zeros(3, 4, 8, 8)
    assert torch.equal(prepare_noise(latent, 9), prepare_noise(latent, 9, batch_index=[0, 1, 2]))


def test_step_noise_uses_seed_plus_one_on_the_cpu():
    like = torch.zeros(2, 4, 4, 4)
    sampler = StepNoiseSampler(like, 10)
    generator = torch.Generator().manual_seed(11)
    first, second = sampler(), sampler()
    assert torch.equal(first, torch.randn(2, 4, 4, 4, generator=generator))
    assert torch.equal(second, torch.randn(2, 4, 4, 4, generator=generator))


def _brownian(seed=3, n=20000):
    return BrownianNoiseSampler(torch.zeros(1, n), 0.03, 14.6, seed)


def test_brownian_noise_is_deterministic_and_unit_variance():
    a, b = _brownian(), _brownian()
    s0, s1 = torch.tensor(14.6), torch.tensor(9.0)
    n1 = a(s0, s1)
    assert torch.equal(n1, b(s0, s1))
    assert torch.equal(n1, a(s0, s1))  # asking again, after other queries, gives the same
    assert abs(float(n1.mean())) < 0.05 and abs(float(n1.std()) - 1) < 0.05
    assert not torch.equal(n1, _brownian(seed=4)(s0, s1))


def test_brownian_increments_are_consistent_across_step_counts():
    tree = _brownian()
    sig = [14.6, 12.0, 7.5, 3.0, 0.03]
    # The noise of one long step is the variance-weighted sum of the noises of its sub-steps.
    whole = tree(torch.tensor(sig[0]), torch.tensor(sig[-1]))
    parts = sum(tree(torch.tensor(a), torch.tensor(b)) * math.sqrt(a - b) for a, b in zip(sig, sig[1:]))
    torch.testing.assert_close(parts / math.sqrt(sig[0] - sig[-1]), whole, atol=1e-5, rtol=0)


def test_brownian_increments_over_disjoint_intervals_are_independent():
    tree = _brownian()
    first = tree(torch.tensor(14.6), torch.tensor(5.0))
    second = tree(torch.tensor(5.0), torch.tensor(1.0))
    third = tree(torch.tensor(1.0), torch.tensor(0.5))
    for u, v in ((first, second), (second, third), (first, third)):
        assert abs(float((u * v).mean())) < 0.04  # 20000 samples: 3 standard errors ≈ 0.02
