"""Standard 3DGS .ply and .splat files: layout, round trips, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

from gaussians import Gaussians, read_ply, read_splat, write_ply, write_splat
from gaussians.ply import ply_properties
from pipelines.core.atomic import atomic_write


def random_gaussians(n: int = 50, sh_degree: int = 0, seed: int = 0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    rest = torch.randn(n, (sh_degree + 1) ** 2 - 1, 3, generator=g) * 0.2 if sh_degree else None
    return Gaussians(means=torch.randn(n, 3, generator=g), log_scales=torch.randn(n, 3, generator=g) - 3,
                     quats=torch.randn(n, 4, generator=g), opacity_logits=torch.randn(n, generator=g) * 2,
                     sh_dc=torch.randn(n, 3, generator=g), sh_rest=rest)


def assert_same(a: Gaussians, b: Gaussians):
    for name in ("means", "log_scales", "quats", "opacity_logits", "sh_dc", "sh_rest"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert torch.equal(x, y), name


@pytest.mark.parametrize("sh_degree", [0, 1, 3])
def test_ply_round_trip_is_exact(tmp_path, sh_degree):
    g = random_gaussians(sh_degree=sh_degree)
    write_ply(tmp_path / "g.ply", g)
    assert_same(read_ply(tmp_path / "g.ply"), g)


def test_ply_layout_is_the_reference_3dgs_one(tmp_path):
    g = random_gaussians(n=7, sh_degree=1)
    write_ply(tmp_path / "g.ply", g)
    raw = (tmp_path / "g.ply").read_bytes()
    header = raw[: raw.index(b"end_header\n")].decode()
    assert "format binary_little_endian 1.0" in header and "element vertex 7" in header
    names = [line.split()[-1] for line in header.splitlines() if line.startswith("property")]
    assert names == ply_properties(3)
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert names[-8:] == ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    assert all(line.split()[1] == "float" for line in header.splitlines() if line.startswith("property"))
    v = PlyData.read(str(tmp_path / "g.ply"))["vertex"]
    # pre-activation values, f_rest channel-major: f_rest_{c·K + k} = band k of channel c (K = 3 here)
    np.testing.assert_array_equal(v["opacity"], g.opacity_logits.numpy())
    np.testing.assert_array_equal(v["scale_1"], g.log_scales[:, 1].numpy())
    np.testing.assert_array_equal(v["rot_0"], g.quats[:, 0].numpy())
    np.testing.assert_array_equal(v["f_rest_4"], g.sh_rest[:, 1, 1].numpy())  # c = 1, k = 1
    np.testing.assert_array_equal(v["f_rest_2"], g.sh_rest[:, 2, 0].numpy())  # c = 0, k = 2
    np.testing.assert_array_equal(v["nx"], np.zeros(7, np.float32))


def test_ply_reads_files_from_other_writers(tmp_path):
    # big-endian, no normals, properties in another order: still read by name
    n = 4
    fields = ["rot_3", "rot_2", "rot_1", "rot_0", "x", "y", "z", "opacity", "scale_0", "scale_1", "scale_2",
              "f_dc_0", "f_dc_1", "f_dc_2"]
    data = np.zeros(n, dtype=[(f, ">f4") for f in fields])
    for i, f in enumerate(fields):
        data[f] = np.arange(n) + 10 * i
    PlyData([PlyElement.describe(data, "vertex")], byte_order=">").write(str(tmp_path / "o.ply"))
    g = read_ply(tmp_path / "o.ply")
    torch.testing.assert_close(g.quats[:, 0], torch.arange(n, dtype=torch.float32) + 30)
    torch.testing.assert_close(g.means[:, 0], torch.arange(n, dtype=torch.float32) + 40)
    assert g.sh_rest is None
    # a point cloud is not a Gaussian splat
    pts = np.zeros(3, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    PlyData([PlyElement.describe(pts, "vertex")]).write(str(tmp_path / "p.ply"))
    with pytest.raises(ValueError, match="missing properties"):
        read_ply(tmp_path / "p.ply")


def test_splat_round_trip_within_quantisation(tmp_path):
    g = random_gaussians(n=200)
    write_splat(tmp_path / "g.splat", g, sort=False)
    assert (tmp_path / "g.splat").stat().st_size == 32 * 200
    back = read_splat(tmp_path / "g.splat")
    torch.testing.assert_close(back.means, g.means, rtol=0, atol=0)
    torch.testing.assert_close(back.scales, g.scales, rtol=1e-6, atol=0)
    torch.testing.assert_close(back.rgb, g.rgb.clamp(0, 1), rtol=0, atol=0.5 / 255 + 1e-6)
    torch.testing.assert_close(back.opacities, g.opacities.clamp(0.5 / 255, 1 - 0.5 / 255), rtol=0,
                               atol=0.5 / 255 + 1e-6)
    # quaternions quantised to 1/128 per component (sign free: q and −q are the same rotation)
    q, q0 = torch.nn.functional.normalize(back.quats, dim=-1), g.rotations
    assert (torch.einsum("ni,ni->n", q, q0).abs() > 0.999).all()


def test_splat_bytes_and_visibility_order(tmp_path):
    g = random_gaussians(n=30)
    write_splat(tmp_path / "g.splat", g)
    raw = np.fromfile(tmp_path / "g.splat", dtype=np.uint8).reshape(30, 32)
    pos = raw[:, :12].copy().view("<f4")
    scale = raw[:, 12:24].copy().view("<f4")
    alpha = raw[:, 27] / 255
    importance = scale.prod(-1) * alpha
    assert (np.diff(importance) <= 1e-6).all()  # most visible first
    order = np.argsort(-(g.scales.prod(-1) * g.opacities).numpy(), kind="stable")
    np.testing.assert_array_equal(pos, g.means.numpy()[order])


def test_writes_through_the_atomic_writer(tmp_path, monkeypatch):
    """The format writers are plain; wrapped in the project's one atomic writer, a failed write
    leaves the old file and no temporary file."""
    path = tmp_path / "g.ply"
    atomic_write(path, lambda tmp: write_ply(tmp, random_gaussians(n=5)))
    before = path.read_bytes()
    assert read_ply(path).means.shape == (5, 3)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(PlyData, "write", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, lambda tmp: write_ply(tmp, random_gaussians(n=9)))
    assert path.read_bytes() == before  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.ply"]  # and no temporary file is left behind
    atomic_write(tmp_path / "g.splat", lambda tmp: write_splat(tmp, random_gaussians(n=2)))
    assert (tmp_path / "g.splat").stat().st_size == 64
