"""The voxel DiT's pieces: 3D window attention (against its dense twin, really windowed, batch
items apart), voxelisation round trips, and the VoxelDiT model (batch isolation, windows restrict)."""

from __future__ import annotations

import pytest
import torch

from dit import VoxelDiT, Window3D, devoxelize, grid_coordinates, set_attention_backend, voxelize
from dit.attention import ATTENTION_BACKENDS, reference_attention
from dit.attention_window3d import dense_window_bias, window_attention_3d, window_attention_3d_dense, window_ids
from dit.voxel_dit import VoxelDiTBlock, sincos_3d

from .tiny_models import randomize

pytestmark = pytest.mark.usefixtures("one_thread")

LAYOUTS = [Window3D((4, 4, 4), 2), Window3D((4, 4, 4), 2, 1), Window3D((8, 8, 8), 4), Window3D((8, 8, 8), 4, 2),
           Window3D((4, 8, 2), 2, 1)]


def qkv(layout: Window3D, b=2, h=3, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, layout.num_tokens, d, generator=g) for _ in range(3)]


# ---------------------------------------------------------------------------- the window kernel

@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
def test_window_kernel_equals_its_dense_masked_twin(layout):
    q, k, v = qkv(layout)
    fast = window_attention_3d(q, k, v, layout)
    dense = window_attention_3d_dense(q, k, v, layout)
    plain = reference_attention(q, k, v, dense_window_bias(layout))  # the 'math' kernel, additive mask
    assert (fast - dense).abs().max() <= 1e-5
    assert (fast - plain).abs().max() <= 1e-5
    assert ATTENTION_BACKENDS["window3d"] is window_attention_3d
    assert ATTENTION_BACKENDS["window3d_dense"] is window_attention_3d_dense


@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
def test_a_token_sees_its_own_window_and_nothing_else(layout):
    q, k, v = qkv(layout, b=1)
    ids = window_ids(layout)
    out = window_attention_3d(q, k, v, layout)
    for token in (0, layout.num_tokens // 2 + 1, layout.num_tokens - 1):
        k2, v2 = k.clone(), v.clone()
        k2[:, :, token] += 3.0
        v2[:, :, token] += 3.0
        changed = (window_attention_3d(q, k2, v2, layout) - out).abs().amax(dim=(0, 1, 3)) > 0  # (T,)
        assert torch.equal(changed, ids == ids[token])


def test_windows_partition_the_grid_and_shifted_ones_do_not_wrap():
    plain, shifted = Window3D((8, 8, 8), 4), Window3D((8, 8, 8), 4, 2)
    assert torch.bincount(window_ids(plain)).tolist() == [64] * 8
    sizes = torch.bincount(window_ids(shifted))
    assert sizes.sum() == 512 and sizes.max() == 64 and sizes[sizes > 0].numel() == 27  # 2 + 1 pieces a side... cubed
    grid = window_ids(shifted).view(8, 8, 8)
    assert grid[0, 3, 3] != grid[7, 3, 3]  # opposite faces never share a window
    assert grid[2, 2, 2] == grid[5, 5, 5] and grid[1, 2, 2] != grid[2, 2, 2]  # windows moved by w/2
    for bad in (dict(grid=(6, 6, 6), window=4), dict(grid=(8, 8, 8), window=4, shift=4), dict(grid=(8, 8), window=2)):
        with pytest.raises(ValueError):
            Window3D(**bad)


@pytest.mark.parametrize("kernel", [window_attention_3d, window_attention_3d_dense])
def test_window_kernel_never_mixes_batch_items(kernel):
    layout = Window3D((8, 8, 8), 4, 2)
    q, k, v = qkv(layout, b=3)
    out = kernel(q, k, v, layout)
    for t in (q, k, v):
        t[1] += torch.randn_like(t[1]) * 5
    again = kernel(q, k, v, layout)
    assert (again[0] - out[0]).abs().max() <= 1e-6 and (again[2] - out[2]).abs().max() <= 1e-6
    assert (again[1] - out[1]).abs().max() > 1e-2


def test_window_kernel_refuses_a_missing_or_mismatched_layout():
    layout = Window3D((4, 4, 4), 2)
    q, k, v = qkv(layout)
    with pytest.raises(ValueError, match="Window3D layout"):
        window_attention_3d(q, k, v, None)
    with pytest.raises(ValueError, match="token grid"):
        window_attention_3d(q[:, :, :10], k[:, :, :10], v[:, :, :10], layout)


# ---------------------------------------------------------------------------- voxelisation

def test_points_at_voxel_centres_come_back_exactly():
    g, gen = 32, torch.Generator().manual_seed(0)
    cells = torch.stack([torch.randperm(g ** 3, generator=gen)[:500] for _ in range(2)])  # distinct voxels
    ijk = torch.stack([cells // g ** 2, cells // g % g, cells % g], dim=-1).float()  # (2, 500, 3)
    xyz = (ijk + 0.5) / g * 2 - 1  # voxel centres in [-1, 1]³
    coords = grid_coordinates(xyz, g, normalize=False)
    assert torch.equal(coords, ijk + 0.5)
    feats = torch.randn(2, 500, 5, generator=gen)
    volume, counts = voxelize(feats, coords, g)
    assert volume.shape == (2, 5, g, g, g) and counts.sum() == 1000
    assert torch.equal(devoxelize(volume, coords), feats)
    i, j, k = ijk[1, 7].long()
    assert torch.equal(volume[1, :, i, j, k], feats[1, 7])  # volumes are indexed [x, y, z]


def test_a_constant_field_comes_back_constant_and_voxels_average():
    g = torch.Generator().manual_seed(1)
    coords = torch.rand(2, 300, 3, generator=g) * 16  # anywhere, border included
    volume = torch.full((2, 4, 16, 16, 16), 0.37)
    assert (devoxelize(volume, coords) - 0.37).abs().max() <= 1e-6
    pts = torch.tensor([[[1.2, 3.9, 0.1], [1.7, 3.1, 0.9], [5.5, 5.5, 5.5]]])
    feats = torch.tensor([[[1.0, 2.0], [3.0, 6.0], [7.0, 7.0]]], requires_grad=True)
    volume, counts = voxelize(feats, pts, 8)
    assert volume[0, :, 1, 3, 0].tolist() == [2.0, 4.0] and counts[0, 0, 1, 3, 0] == 2
    assert volume[0, :, 5, 5, 5].tolist() == [7.0, 7.0] and volume.abs().sum() == 2 + 4 + 14
    volume.sum().backward()
    assert feats.grad.tolist() == [[[0.5, 0.5], [0.5, 0.5], [1.0, 1.0]]]


def test_per_item_normalisation_fills_the_grid_and_keeps_items_apart():
    g = torch.Generator().manual_seed(2)
    xyz = torch.randn(2, 256, 3, generator=g)
    coords = grid_coordinates(xyz, 32)
    assert coords.min() >= 0 and coords.max() <= 32
    far = xyz.clone()
    far[1] = far[1] * 40 + 100
    assert torch.equal(grid_coordinates(far, 32)[0], coords[0])
    assert (grid_coordinates(far, 32)[1] - coords[1]).abs().max() < 1e-3  # scale and shift do not matter


# ---------------------------------------------------------------------------- the model

def tiny(**overrides) -> VoxelDiT:
    cfg = dict(sample_size=16, patch_size=2, in_channels=6, hidden_size=48, depth=4, num_heads=2, window_size=4,
               window_blocks=[0, 2], shift_windows=True, text_dim=16, pooled_dim=16, point_head_channels=8)
    cfg.update(overrides)
    return randomize(VoxelDiT(**cfg)).eval()


def inputs(b=3, n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(sample=torch.randn(b, n, 6, generator=g), timestep=torch.tensor([0.1, 0.5, 0.9])[:b],
                encoder_hidden_states=torch.randn(b, 5, 16, generator=g),
                encoder_attention_mask=torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])[:b],
                pooled_text=torch.randn(b, 16, generator=g))


def test_a_fresh_model_predicts_zero_and_keeps_the_point_shape():
    model = VoxelDiT(sample_size=16, patch_size=4, hidden_size=24, depth=2, num_heads=2, window_size=2,
                     window_blocks=[1])
    out = model(torch.randn(2, 100, 3), 0.5).sample
    assert out.shape == (2, 100, 3) and torch.count_nonzero(out) == 0  # adaLN-Zero: identity blocks, zero head
    assert [b.window for b in model.transformer_blocks] == [None, Window3D((4, 4, 4), 2)]


@pytest.mark.parametrize("window_backend", ["window3d", "window3d_dense"])
def test_the_model_never_mixes_batch_items(window_backend):
    model = tiny(window_backend=window_backend)
    x = inputs()
    with torch.no_grad():
        out = model(**x).sample
        other = {k: v.clone() for k, v in x.items()}
        for key in ("sample", "encoder_hidden_states", "pooled_text"):
            other[key][1] += torch.randn_like(other[key][1])
        other["timestep"][1] = 0.7
        again = model(**other).sample
    assert out.shape == (3, 256, 6)
    assert (again[0] - out[0]).abs().max() <= 1e-6 and (again[2] - out[2]).abs().max() <= 1e-6
    assert (again[1] - out[1]).abs().max() > 1e-3


def test_windowed_blocks_restrict_attention_and_global_ones_do_not():
    layout = Window3D((4, 4, 4), 2)
    torch.manual_seed(0)
    windowed = randomize(VoxelDiTBlock(32, 2, window=layout)).eval()
    global_ = VoxelDiTBlock(32, 2)
    global_.load_state_dict(windowed.state_dict())
    x, cond = torch.randn(2, 64, 32), torch.randn(2, 32)
    moved = x.clone()
    moved[:, 0] += torch.randn(32)  # a token of window 0 (not a constant shift: LayerNorm would remove it)
    outside = window_ids(layout) != window_ids(layout)[0]
    with torch.no_grad():
        w_change = (windowed(moved, cond) - windowed(x, cond)).abs().amax(dim=(0, 2))
        g_change = (global_(moved, cond) - global_(x, cond)).abs().amax(dim=(0, 2))
    assert w_change[outside].max() == 0 and w_change[~outside].min() > 0
    assert g_change[outside].min() > 1e-4
    # whole model: the same weights with and without windows give different predictions
    with torch.no_grad():
        a = tiny()(**inputs()).sample
        b = tiny(window_blocks=[])(**inputs()).sample
    assert (a - b).abs().max() > 1e-3


def test_switching_the_kernel_keeps_the_windows():
    model, x = tiny(), inputs()
    with torch.no_grad():
        fast = model(**x).sample
        set_attention_backend(model, "math")  # windowed blocks then get the dense block-diagonal bias
        plain = model(**x).sample
    assert (fast - plain).abs().max() <= 1e-4 * max(1.0, fast.abs().max().item())
    set_attention_backend(model, "window3d")  # global blocks and cross-attention cannot run windowed
    with pytest.raises(ValueError, match="Window3D layout"):
        model(**x)


def test_text_conditioning_and_a_backward_pass():
    model, x = tiny(), inputs(b=2)
    out = model(**x).sample
    changed = model(**dict(x, encoder_hidden_states=x["encoder_hidden_states"] + 1)).sample
    assert (changed - out).abs().max() > 1e-3
    masked = x["encoder_hidden_states"].clone()
    masked[0, 3:] = 5.0  # masked-out slots do not matter
    assert (model(**dict(x, encoder_hidden_states=masked)).sample[0] - out[0]).abs().max() <= 1e-5
    out.square().mean().backward()
    assert model.patch_embed.weight.grad.abs().sum() > 0 and model.point_head[0].weight.grad.abs().sum() > 0


def test_config_round_trip_and_clear_errors(tmp_path):
    model = tiny(voxel_normalize=False, occupancy_channel=False, point_head_channels=0, adaln="single")
    model.save_pretrained(tmp_path)
    loaded = VoxelDiT.from_pretrained(tmp_path).eval()
    x = inputs()
    with torch.no_grad():
        assert torch.equal(loaded(**x).sample, model(**x).sample)
    assert [b.window for b in loaded.transformer_blocks] == [b.window for b in model.transformer_blocks]
    base = dict(sample_size=16, patch_size=4, hidden_size=24, depth=4, num_heads=2, window_size=2)
    with pytest.raises(ValueError, match="list of block indices"):
        VoxelDiT(**base, window_blocks="0,3")  # DiT-3D's flag turned this into characters
    with pytest.raises(ValueError, match="depth=4"):
        VoxelDiT(**base, window_blocks=[4])
    with pytest.raises(ValueError, match="does not divide"):
        VoxelDiT(**dict(base, window_size=3), window_blocks=[0])
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        VoxelDiT(**base)(torch.randn(2, 10, 6), 0.5)


def test_3d_positions_are_distinct_per_token():
    pos = sincos_3d(48, (4, 4, 4))
    assert pos.shape == (64, 48) and torch.cdist(pos, pos).fill_diagonal_(1).min() > 0.1
