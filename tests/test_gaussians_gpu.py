"""gsplat's CUDA kernels and ditkit's CPU rasteriser agree (runs only where there is a CUDA device).

The same scenes as `python -m bench.gaussians_gpu --quick` (awkward cases, RGB+D, SH degree 3
with backgrounds): images within 1e-3 mean absolute difference, gradients of every input within
1e-3 relative. The script also times both; run it as one command on a GPU machine.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason="needs a CUDA device: compares ditkit's CPU rasteriser with gsplat's kernels")]


def skip_without_gsplat():
    from bench.gaussians_gpu import gsplat_unavailable

    reason = gsplat_unavailable()
    if reason:
        pytest.skip(reason)


def test_gsplat_and_ditkit_render_and_differentiate_alike(capsys):
    skip_without_gsplat()
    from bench.gaussians_gpu import print_table, run_all

    rows = run_all(quick=True)
    print_table(rows)
    table = capsys.readouterr().out
    assert all(r.ok for r in rows), table


def test_cuda_tensors_pick_gsplat():
    skip_without_gsplat()
    from bench.gaussians_gpu import awkward_scene
    from gaussians import rasterize

    scene = {k: (v.cuda() if torch.is_tensor(v) else v) for k, v in awkward_scene(n=60).items()}
    image, alpha, info = rasterize(**scene)
    assert info["backend"] == "gsplat" and image.is_cuda and info["radii"].shape == (3, 60, 2)
