"""`TrainConfig`: a training recipe as data, read from a JSON file (e.g. `configs/t2i_shapes.json`).

Why a strict loader: a misspelt key ("ema_decy") silently falling back to a default would cost a
multi-day CPU run, so unknown keys, missing required keys and out-of-range values are refused
with a message naming them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.models.modeling_utils import ModelMixin

import dit
from dit.video_masks import MASK_MODES
from world.vocab import CLIP_ATTRIBUTES, IMAGE_ATTRIBUTES


class ConfigError(ValueError):
    """A training config that cannot be used: the message names the file and the bad keys/values."""


LR_SCHEDULES = ("constant", "cosine", "wsd")
TASKS = ("t2i", "t2v", "t23d")
POINT_CHANNELS = (3, 6)                      # t23d: xyz, or xyz + rgb
MIXED_PRECISION = ("no", "bf16", "fp16")
# what a stage may change mid-run: what batches are drawn and how the loss weighs them (the model,
# optimiser, schedule and the exported sampler's shift stay one thing for the whole run)
STAGE_FIELDS = ("caption_drop_prob", "paraphrase", "contrast_attribute", "contrast_from_step",
                "contrast_loss_weight", "cfg_dropout", "sigma_logit_mean", "sigma_logit_std",
                "sigma_uniform_frac", "branch_loss_weights", "mask_mode_weights", "low_res_frac")


@dataclass
class TrainConfig:
    """One training recipe (text-to-image, text-to-video or text-to-3D). Fields without a default
    are required in the JSON.

    The model is `getattr(dit, model)(**model_kwargs)`, so any backbone exported by the `dit`
    package (DiT, MultiResDiT, …) trains the same way.
    """

    model: str                                   # class name in the `dit` package
    model_kwargs: dict                           # its constructor arguments
    description: str = ""                        # free text: what this recipe is for
    task: str = "t2i"                            # "t2i" (images), "t2v" (clips, VDT masks) or "t23d" (point
                                                 # clouds of world.shapes3d for a VoxelDiT; xyz + rgb when its
                                                 # in_channels is 6; captions are canonical, only cfg_dropout
                                                 # applies: a left-out 3D word changes the shape's meaning)
    # data
    resolution: int = 64                         # image side in pixels (Shapes World render size)
    vae: str | None = None                       # a diffusers AutoencoderKL folder (or a folder with vae/): train
                                                 # in its latent space (frozen; each batch encoded, training.latents);
                                                 # eval and export decode through it; the model's sample_size is
                                                 # then resolution / its downsampling, in_channels its latent channels
    low_res: int | None = None                   # a smaller side some steps train at (renders area-downsampled,
                                                 # as bottleneck sampling's middle stage sees them)
    low_res_frac: float = 0.0                    # the share of steps (whole batches) drawn at low_res
    num_frames: int = 16                         # t2v: frames per clip
    num_points: int = 2048                       # t23d: points per cloud (training, eval, export default)
    mask_mode_weights: dict | None = None        # t2v: VDT task mix (None: dit.video_masks defaults)
    batch_size: int = 64                         # per process
    caption_drop_prob: float = 0.3               # leave out size / position / background each
    paraphrase: bool = True                      # draw caption wording from world.paraphrases
    contrast_attribute: str | None = None        # batch of twin pairs differing only in this attribute, same
                                                 # noise, sigma (and t2v mask): world.make_(video_)contrast_batch
    contrast_from_step: int = 1                  # ... from this step on (earlier steps: ordinary batches)
    contrast_loss_weight: float = 0.0            # extra weight on the twins' error difference (the part
                                                 # of the loss only the contrast attribute explains)
    cfg_dropout: float = 0.1                     # caption replaced by "" (classifier-free guidance)
    text_max_length: int = 32                    # MiniLM tokens; the exported pipeline uses the same
    # objective: sigma = sigmoid(N(mean, std)) (SD3's logit-normal)
    sigma_logit_mean: float = 0.0
    sigma_logit_std: float = 1.0
    sigma_shift: float = 1.0                     # sigma -> s·sigma / (1 + (s-1)·sigma); the exported
                                                 # scheduler's `shift` is the same s (SD3's shift)
    sample_shift: float | None = None            # the eval and exported sampler's shift instead, when
                                                 # sampling does better with another (None: sigma_shift)
    sigma_uniform_frac: float = 0.0              # this share of sigmas drawn uniform in (0, 1) instead,
                                                 # unshifted: keeps the last, low-noise steps trained
    branch_loss_weights: list[float] | None = None  # one per `branch_samples` output, coarse to fine
    init_from: str | None = None                 # a saved model a fresh run starts from: for t2v an image model
                                                 # to inflate (dit.inflate); for either task a model of the
                                                 # same class and config to continue
    transplant_from: list[str] | None = None     # then, from each of these saved models of the same class,
                                                 # every module whose weights fit as they are (init_from.py)
    # optimisation
    lr: float = 3e-4
    lr_schedule: str = "constant"                # after warm-up: "constant", "cosine" (to 0) or "wsd"
    decay_steps: int = 0                         # wsd: linear decay to 0 over the last decay_steps
    warmup_steps: int = 500
    total_steps: int = 20000
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    mixed_precision: str = "bf16"                # accelerate's: "no" | "bf16" | "fp16"
    seed: int = 0
    # bookkeeping
    log_every: int = 50
    checkpoint_every: int = 500
    eval_every: int = 2000                       # 0: only at the end
    eval_prompts: int = 64                       # world.eval_prompts(n, "heldout", seed=0)
    eval_steps: int = 20                         # sampler steps at evaluation
    eval_guidance: float = 4.0
    # a recipe that changes on the way: [{"from_step": N, <field>: value, ...}, ...], applied in
    # order from step N on; only the data and objective fields in STAGE_FIELDS may change
    stages: list | None = None

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_dict(cls, data: dict, source: str = "<dict>") -> "TrainConfig":
        """Checked construction: unknown or missing keys and bad values raise `ConfigError`."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {unknown}; known keys are {sorted(fields)}")
        required = [n for n, f in fields.items()
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        missing = [n for n in required if n not in data]
        if missing:
            raise ConfigError(f"{source}: missing required key(s) {missing}")
        values = dict(data)
        if "adam_betas" in values:
            values["adam_betas"] = tuple(values["adam_betas"])
        cfg = cls(**values)
        cfg.validate(source)
        return cfg

    def validate(self, source: str = "<config>") -> None:
        """Range and type checks; also that the model class exists in the `dit` package."""
        problems = []

        def need(ok: bool, message: str) -> None:
            if not ok:
                problems.append(message)

        need(self.task in TASKS, f"task must be one of {TASKS}, got {self.task!r}")
        if self.mask_mode_weights is not None:
            need(isinstance(self.mask_mode_weights, dict) and set(self.mask_mode_weights) <= set(MASK_MODES)
                 and all(isinstance(w, (int, float)) and w >= 0 for w in self.mask_mode_weights.values())
                 and sum(self.mask_mode_weights.values()) > 0,
                 f"mask_mode_weights must map modes of {MASK_MODES} to non-negative weights, "
                 f"got {self.mask_mode_weights!r}")
        for name in ("resolution", "num_frames", "num_points", "batch_size", "total_steps", "log_every", "checkpoint_every",
                     "eval_prompts", "eval_steps", "text_max_length"):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                 f"{name} must be a positive integer, got {value!r}")
        for name in ("warmup_steps", "eval_every", "seed", "contrast_from_step"):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                 f"{name} must be a non-negative integer, got {value!r}")
        for name in ("caption_drop_prob", "cfg_dropout", "ema_decay", "sigma_uniform_frac", "low_res_frac"):
            value = getattr(self, name)
            need(isinstance(value, (int, float)) and 0 <= value <= 1, f"{name} must be in [0, 1], got {value!r}")
        need(isinstance(self.lr, (int, float)) and self.lr > 0, f"lr must be positive, got {self.lr!r}")
        need(isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0,
             f"weight_decay must be >= 0, got {self.weight_decay!r}")
        need(isinstance(self.grad_clip, (int, float)) and self.grad_clip > 0,
             f"grad_clip must be positive, got {self.grad_clip!r}")
        need(isinstance(self.sigma_logit_std, (int, float)) and self.sigma_logit_std > 0,
             f"sigma_logit_std must be positive, got {self.sigma_logit_std!r}")
        need(isinstance(self.sigma_shift, (int, float)) and self.sigma_shift > 0,
             f"sigma_shift must be positive, got {self.sigma_shift!r}")
        need(self.sample_shift is None or (isinstance(self.sample_shift, (int, float))
                                           and not isinstance(self.sample_shift, bool) and self.sample_shift > 0),
             f"sample_shift must be positive (or null: sigma_shift), got {self.sample_shift!r}")
        need(len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas),
             f"adam_betas must be two numbers in [0, 1), got {list(self.adam_betas)!r}")
        need(self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        need(isinstance(self.decay_steps, int) and not isinstance(self.decay_steps, bool)
             and 0 <= self.decay_steps <= (self.total_steps if isinstance(self.total_steps, int) else 0)
             and (self.decay_steps > 0) == (self.lr_schedule == "wsd"),
             f"decay_steps must be 1..total_steps for lr_schedule 'wsd' and 0 otherwise, got {self.decay_steps!r} "
             f"(lr_schedule {self.lr_schedule!r})")
        need(self.mixed_precision in MIXED_PRECISION,
             f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        need(isinstance(self.model_kwargs, dict), f"model_kwargs must be an object, got {self.model_kwargs!r}")
        need(self.branch_loss_weights is None
             or (isinstance(self.branch_loss_weights, list)
                 and all(isinstance(w, (int, float)) and w >= 0 for w in self.branch_loss_weights)),
             f"branch_loss_weights must be null or a list of non-negative numbers, got {self.branch_loss_weights!r}")
        if self.contrast_attribute is not None:
            allowed = sorted(CLIP_ATTRIBUTES if self.task == "t2v" else IMAGE_ATTRIBUTES)
            need(self.contrast_attribute in allowed,
                 f"contrast_attribute must be null or, for task {self.task!r}, one of {allowed}; "
                 f"got {self.contrast_attribute!r}")
            need(isinstance(self.batch_size, int) and self.batch_size % 2 == 0,
                 f"contrast_attribute needs an even batch_size, got {self.batch_size!r}")
        need(isinstance(self.contrast_loss_weight, (int, float)) and self.contrast_loss_weight >= 0,
             f"contrast_loss_weight must be >= 0, got {self.contrast_loss_weight!r}")
        need(not self.contrast_loss_weight or self.contrast_attribute is not None,
             f"contrast_loss_weight {self.contrast_loss_weight!r} needs contrast_attribute (twin batches)")
        need(self.vae is None or (isinstance(self.vae, str) and self.vae),
             f"vae must be null or an autoencoder folder path; got {self.vae!r}")
        need(self.init_from is None or (isinstance(self.init_from, str) and self.init_from),
             f"init_from must be null or a folder path; got {self.init_from!r}")
        need(self.transplant_from is None or (isinstance(self.transplant_from, list) and self.transplant_from
                                              and all(isinstance(p, str) and p for p in self.transplant_from)),
             f"transplant_from must be null or a list of folder paths; got {self.transplant_from!r}")
        need(self.low_res is None or (isinstance(self.low_res, int) and not isinstance(self.low_res, bool)
                                      and isinstance(self.resolution, int) and 0 < self.low_res < self.resolution
                                      and self.resolution % self.low_res == 0),
             f"low_res must be null or a positive divisor of resolution ({self.resolution!r}) below it, "
             f"got {self.low_res!r}")
        need(not (isinstance(self.low_res_frac, (int, float)) and self.low_res_frac > 0) or self.low_res is not None,
             f"low_res_frac {self.low_res_frac!r} needs low_res (the smaller side)")
        self._validate_point_task(need)
        self._validate_stages(need, source)
        if not problems:
            try:
                self.model_class()
            except ConfigError as err:
                problems.append(str(err))
        if problems:
            raise ConfigError(f"{source}: " + "; ".join(problems))

    def _validate_point_task(self, need) -> None:
        """t23d trains a point model (`VoxelDiT`) on world.shapes3d clouds, and only it does; the
        image-only options (autoencoder, contrast twins, low-res batches) do not apply. A second phase
        may start from a saved VoxelDiT (`init_from` of the same config, `transplant_from` of any)."""
        cls = getattr(dit, str(self.model), None)
        point_model = isinstance(cls, type) and issubclass(cls, dit.VoxelDiT)
        if self.task != "t23d":
            need(not point_model, f"model {self.model!r} denoises point clouds: use task 't23d', not {self.task!r}")
            return
        need(cls is None or point_model, f"task 't23d' trains a point model (VoxelDiT), not {self.model!r}")
        if isinstance(self.model_kwargs, dict):
            need(self.model_kwargs.get("in_channels", 3) in POINT_CHANNELS,
                 f"task 't23d': model_kwargs.in_channels must be one of {POINT_CHANNELS} (xyz, or xyz + rgb), "
                 f"got {self.model_kwargs.get('in_channels')!r}")
        for name in ("vae", "contrast_attribute", "low_res"):
            need(getattr(self, name) is None, f"task 't23d' takes no {name} (got {getattr(self, name)!r})")

    @property
    def point_channels(self) -> int:
        """t23d: channels per point the model takes (3: xyz; 6: xyz + rgb)."""
        return int(self.model_kwargs.get("in_channels", 3))

    def _validate_stages(self, need, source: str) -> None:
        if self.stages is None:
            return
        if not (isinstance(self.stages, list) and all(isinstance(st, dict) for st in self.stages)):
            need(False, f"stages must be null or a list of objects, got {self.stages!r}")
            return
        last, well_formed = 0, True
        for i, stage in enumerate(self.stages):
            start = stage.get("from_step")
            ok_start = isinstance(start, int) and not isinstance(start, bool) and start > last
            need(ok_start, f"stages[{i}].from_step must be an integer above the previous stage's ({last}), "
                           f"got {start!r}")
            last = start if ok_start else last
            bad = sorted(set(stage) - {"from_step"} - set(STAGE_FIELDS))
            need(not bad, f"stages[{i}] may not change {bad}; a stage may change {list(STAGE_FIELDS)}")
            well_formed = well_formed and ok_start and not bad
        if well_formed:  # each stage's recipe must itself be valid (e.g. no negative weights)
            for i, stage in enumerate(self.stages):
                changes = {k: v for k, v in stage.items() if k in STAGE_FIELDS}
                try:
                    dataclasses.replace(self, stages=None, **changes).validate(f"{source} stages[{i}]")
                except ConfigError as err:
                    need(False, str(err))

    def at_step(self, step: int) -> "TrainConfig":
        """The recipe in force at `step` (1-based): this one with every stage up to `step` applied."""
        if not self.stages:
            return self
        changes = {}
        for stage in self.stages:
            if stage["from_step"] <= step:
                changes.update({k: v for k, v in stage.items() if k != "from_step"})
        return dataclasses.replace(self, **changes) if changes else self

    @property
    def sampling_shift(self) -> float:
        """The shift of the sampler the eval and the exported pipeline use."""
        return self.sigma_shift if self.sample_shift is None else self.sample_shift

    def model_class(self) -> type:
        """The backbone class `dit.<model>` (a diffusers ModelMixin)."""
        cls = getattr(dit, str(self.model), None)
        if not (isinstance(cls, type) and issubclass(cls, ModelMixin)):
            known = sorted(n for n in dir(dit) if isinstance(getattr(dit, n), type)
                           and issubclass(getattr(dit, n), ModelMixin))
            raise ConfigError(f"model {self.model!r} is not a model class of the dit package; known: {known}")
        return cls

    def build_model(self):
        """A freshly initialised backbone (seeded by `seed`, so every process starts identical)."""
        torch.manual_seed(self.seed)
        try:
            return self.model_class()(**self.model_kwargs)
        except TypeError as err:
            raise ConfigError(f"model_kwargs do not fit {self.model}: {err}") from err

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["adam_betas"] = list(self.adam_betas)
        return data


def load_config(path: str | Path) -> TrainConfig:
    """Read and check a JSON recipe; a missing file or bad JSON raises `ConfigError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from err
    return TrainConfig.from_dict(data, source=str(path))
