"""VDT mask modelling: each task's mask, seeded sampling, and a loss blind to given positions."""

from __future__ import annotations

import pytest
import torch

from dit.video_masks import (MASK_MODES, expand_mask, given_frames_mask, mask_for, masked_loss,
                             sample_frame_masks)


def frames(mask: torch.Tensor) -> list[int]:
    return mask.nonzero().flatten().tolist()


def test_each_mode_gives_the_frames_it_names():
    assert frames(mask_for("unconditional", 8)) == []
    assert frames(mask_for("predict", 8, k=3)) == [0, 1, 2]
    assert frames(mask_for("backward", 8, k=2)) == [6, 7]
    assert frames(mask_for("interpolate", 9, k=4)) == [0, 4, 8]
    assert frames(mask_for("single", 8, index=5)) == [5]
    random = mask_for("random", 8, generator=torch.Generator().manual_seed(0), prob=0.99)
    assert random.dtype == torch.bool and random.shape == (8,) and 0 < int(random.sum()) < 8  # never all given


@pytest.mark.parametrize("kwargs,match", [
    (dict(mode="sideways", num_frames=4), "unknown mask mode 'sideways'"),
    (dict(mode="predict", num_frames=4, k=5), "k=5"),
    (dict(mode="single", num_frames=4, index=4), "frame index 4"),
])
def test_bad_mask_requests_say_what_is_wrong(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mask_for(**kwargs)


def test_sampling_is_reproducible_and_covers_every_mode():
    a = sample_frame_masks(64, 16, torch.Generator().manual_seed(3))
    b = sample_frame_masks(64, 16, torch.Generator().manual_seed(3))
    c = sample_frame_masks(64, 16, torch.Generator().manual_seed(4))
    assert a.shape == (64, 16) and a.dtype == torch.bool
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (~a).any(dim=1).all()  # every clip leaves something to generate
    assert (~a.any(dim=1)).any()  # some clips are plain text-to-video


def test_sampling_respects_modes_and_weights():
    g = torch.Generator().manual_seed(0)
    only_predict = sample_frame_masks(32, 8, g, modes=["predict"])
    for row in only_predict:  # a prefix of given frames
        k = int(row.sum())
        assert 1 <= k <= 7 and row[:k].all() and not row[k:].any()
    none = sample_frame_masks(8, 8, g, weights={"unconditional": 1.0})
    assert not none.any()
    assert not sample_frame_masks(4, 1, g).any()  # one frame: nothing to condition on
    with pytest.raises(ValueError, match="unknown mask mode"):
        sample_frame_masks(2, 8, g, modes=["nope"])
    assert set(MASK_MODES) >= {"unconditional", "predict", "backward", "interpolate", "single", "random"}


def test_first_mode_gives_frame_zero_alone_and_a_zero_weight_mode_leaves_the_draw_alone():
    assert frames(mask_for("first", 8)) == [0]  # what image-first sampling gives the video model
    firsts = sample_frame_masks(16, 8, torch.Generator().manual_seed(0), weights={"first": 1.0})
    assert firsts[:, 0].all() and not firsts[:, 1:].any()
    mixed = sample_frame_masks(400, 8, torch.Generator().manual_seed(0), weights={"first": 0.6, "unconditional": 0.4})
    share = (mixed[:, 0] & ~mixed[:, 1:].any(1)).float().mean().item()
    assert 0.5 < share < 0.7 and not mixed[:, 1:].any()
    # "first" has weight 0 by default: the masks of earlier recipes draw exactly as before it existed
    old_modes = [m for m in MASK_MODES if m != "first"]
    before = sample_frame_masks(64, 8, torch.Generator().manual_seed(3), modes=old_modes)
    assert torch.equal(sample_frame_masks(64, 8, torch.Generator().manual_seed(3)), before)


def test_given_frames_mask_from_pipeline_inputs():
    assert frames(given_frames_mask(8, init_count=2, keyframe_indices=[5, 7])) == [0, 1, 5, 7]
    assert frames(given_frames_mask(4)) == []
    with pytest.raises(ValueError, match="keyframe index 8"):
        given_frames_mask(8, keyframe_indices=[8])


def test_expand_mask_to_tokens_and_pixels():
    frame_mask = torch.tensor([[True, False, False]])
    out = expand_mask(frame_mask, 3, 4, 4)
    assert out.shape == (1, 3, 4, 4) and out[0, 0].eq(1).all() and out[0, 1:].eq(0).all()
    token_mask = torch.zeros(1, 3, 2, 2, dtype=torch.bool)
    token_mask[0, 1, 0, 1] = True
    up = expand_mask(token_mask, 3, 4, 4)
    assert up[0, 1, :2, 2:].eq(1).all() and up.sum() == 4
    with pytest.raises(ValueError, match="given_mask must be"):
        expand_mask(torch.zeros(1, 5, dtype=torch.bool), 3, 4, 4)


def test_masked_loss_ignores_given_positions():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 3, 4, 8, 8, generator=g), torch.randn(2, 3, 4, 8, 8, generator=g)
    given = torch.tensor([[True, False, False, True], [False, False, False, False]])
    loss = masked_loss(pred, target, given)
    changed = pred.clone()
    changed[0, :, 0] += 100.0
    changed[0, :, 3] -= 50.0
    assert torch.allclose(masked_loss(changed, target, given), loss)
    generated = torch.cat([(pred - target)[0, :, 1:3].flatten(), (pred - target)[1].flatten()])
    assert torch.allclose(loss, generated.pow(2).mean())  # a mean over generated positions only
    assert torch.allclose(masked_loss(pred, target, None), (pred - target).pow(2).mean())


def test_masked_loss_is_zero_with_a_gradient_when_everything_is_given():
    pred = torch.randn(1, 3, 2, 4, 4, requires_grad=True)
    loss = masked_loss(pred, torch.zeros_like(pred), torch.ones(1, 2, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() == 0


def test_masked_loss_reads_token_masks_at_any_resolution():
    pred, target = torch.ones(1, 1, 2, 4, 4), torch.zeros(1, 1, 2, 4, 4)
    token_mask = torch.zeros(1, 2, 2, 2, dtype=torch.bool)
    token_mask[0, 0] = True  # all of frame 0 given, at a 2x2 token grid
    pred[:, :, 0] = 99.0
    assert masked_loss(pred, target, token_mask).item() == pytest.approx(1.0)
