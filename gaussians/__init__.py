"""ditkit gaussians: 3D Gaussian splatting on CPU (ditkit's own compositor) and CUDA (gsplat).

- `Gaussians`, `Cameras`: the representation (pre-activation parameters, gsplat's layout) and
  pinhole cameras, with WORLD.md's orbit path (`Cameras.orbit`).
- `rasterize`: gsplat's `rasterization` arguments and conventions; the backend follows the
  tensors' device, `backend=` forces one.
- `read_ply` / `write_ply` (standard 3DGS `.ply`), `read_splat` / `write_splat` (`.splat`).
- `fit`: Gaussians from posed images (3DGS's recipe); `Gaussians4D` (canonical Gaussians with
  polynomial motion) and `fit4d` for frames with a camera and a time each (an orbit clip);
  `write_ply_sequence` / `read_ply_sequence`: a 4D asset as one `.ply` per time step plus JSON.
- `world_clip` / `held_out_views`: WORLD.md's 4D objects rendered as orbit clips.

`python -m gaussians.fit` is the command line (it shadows the `fit` attribute in its own process only);
`python -m gaussians.write_world_clip` writes a world clip in the form it reads.
"""

from .cameras import Cameras, intrinsics, look_at
from .fitting import FitConfig, FitLog, fit
from .fitting4d import Fit4DConfig, fit4d
from .gaussians import Gaussians
from .motion import Gaussians4D
from .ply import read_ply, write_ply
from .rasterization import BACKENDS, rasterize
from .sequence import read_ply_sequence, sequence_arrays, write_ply_sequence
from .sh import SH_C0, eval_sh, rgb_to_sh, sh_to_rgb
from .splat import read_splat, write_splat
from .ssim import ssim
from .world_render import WorldClip, held_out_views, world_clip

__all__ = ["BACKENDS", "Cameras", "Fit4DConfig", "FitConfig", "FitLog", "Gaussians", "Gaussians4D", "SH_C0",
           "WorldClip", "eval_sh", "fit", "fit4d", "held_out_views", "intrinsics", "look_at", "rasterize",
           "read_ply", "read_ply_sequence", "read_splat", "rgb_to_sh", "sequence_arrays", "sh_to_rgb", "ssim",
           "world_clip", "write_ply", "write_ply_sequence", "write_splat"]
