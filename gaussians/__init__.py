"""ditkit gaussians: 3D Gaussian splatting on CPU (ditkit's own compositor) and CUDA (gsplat).

- `Gaussians`, `Cameras`: the representation (pre-activation parameters, gsplat's layout) and
  pinhole cameras, with WORLD.md's orbit path (`Cameras.orbit`).
- `rasterize`: gsplat's `rasterization` arguments and conventions; the backend follows the
  tensors' device, `backend=` forces one.
- `read_ply` / `write_ply` (standard 3DGS `.ply`), `read_splat` / `write_splat` (`.splat`).
"""

from .cameras import Cameras, intrinsics, look_at
from .gaussians import Gaussians
from .ply import read_ply, write_ply
from .rasterization import BACKENDS, rasterize
from .sh import SH_C0, eval_sh, rgb_to_sh, sh_to_rgb
from .splat import read_splat, write_splat

__all__ = ["BACKENDS", "Cameras", "Gaussians", "SH_C0", "eval_sh", "intrinsics", "look_at", "rasterize",
           "read_ply", "read_splat", "rgb_to_sh", "sh_to_rgb", "write_ply", "write_splat"]
