import pytest
import torch

from ldm.training.loop import compute_dtype, step_generator, warmup_cosine, warmup_constant


def test_step_generators_are_reproducible_and_independent():
    a = torch.randn(4, generator=step_generator(1, 10))
    assert torch.equal(a, torch.randn(4, generator=step_generator(1, 10)))
    assert not torch.equal(a, torch.randn(4, generator=step_generator(1, 11)))
    assert not torch.equal(a, torch.randn(4, generator=step_generator(2, 10)))
    assert not torch.equal(a, torch.randn(4, generator=step_generator(1, 10, stream=1)))


def test_schedules():
    assert warmup_cosine(0, 100, 1.0, 0.1, 10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 1.0, 0.1, 10) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, 1.0, 0.1, 10) == pytest.approx(1.0)
    assert warmup_cosine(100, 100, 1.0, 0.1, 10) == pytest.approx(0.1)
    assert warmup_cosine(55, 100, 1.0, 0.1, 10) == pytest.approx(0.55)
    assert warmup_constant(4, 2.0, 10) == pytest.approx(1.0) and warmup_constant(50, 2.0, 10) == 2.0


def test_precision_choice():
    assert compute_dtype("fp32") == torch.float32 and compute_dtype("bf16") == torch.bfloat16
    assert compute_dtype("auto") in (torch.float32, torch.bfloat16)
    with pytest.raises(ValueError):
        compute_dtype("fp8")
