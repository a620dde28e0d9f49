"""Scheduler names for the CLIs, mapped onto diffusers' schedulers (never re-implemented).

A model is trained for one objective: noise/v prediction (DDPM family) or flow matching.
`make_scheduler` builds the named diffusers scheduler from the model's own scheduler config
so that the objective carries over, and refuses a scheduler that cannot serve it.
"""

from __future__ import annotations

import diffusers

from .errors import UserError

# name → (diffusers class, extra config when the model is flow-matching or None if unsupported)
SCHEDULERS: dict[str, tuple[str, dict | None]] = {
    "ddim": ("DDIMScheduler", None),
    "ddpm": ("DDPMScheduler", None),
    "pndm": ("PNDMScheduler", None),
    "euler": ("EulerDiscreteScheduler", None),
    "euler-a": ("EulerAncestralDiscreteScheduler", None),
    "heun": ("HeunDiscreteScheduler", None),
    "dpm++": ("DPMSolverMultistepScheduler", {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}),
    "unipc": ("UniPCMultistepScheduler", {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}),
    "flow-euler": ("FlowMatchEulerDiscreteScheduler", {}),
    "flow-heun": ("FlowMatchHeunDiscreteScheduler", {}),
}

FLOW_CLASSES = {"FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler"}


def is_flow_matching(scheduler) -> bool:
    """True when the scheduler integrates a flow-matching velocity (whatever its class)."""
    cfg = scheduler.config
    return type(scheduler).__name__ in FLOW_CLASSES or cfg.get("prediction_type") == "flow_prediction"


def make_scheduler(name: str, current):
    """The scheduler called `name`, configured for the same objective as `current`."""
    cls, config = scheduler_config(name, current)
    return cls.from_config(config)


def scheduler_config(name: str, current) -> tuple[type, dict]:
    """(class, config) of the scheduler called `name` for `current`'s objective; UserError if unfit."""
    if name not in SCHEDULERS:
        raise UserError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
    class_name, flow_extra = SCHEDULERS[name]
    cls = getattr(diffusers, class_name)
    config = dict(current.config)
    if is_flow_matching(current):
        if flow_extra is None:
            raise UserError(f"scheduler {name!r} does not fit this flow-matching model; use one of "
                            f"{', '.join(n for n, (_, e) in SCHEDULERS.items() if e is not None)}")
        config.update(flow_extra)
        # FlowMatch* schedulers call the timestep shift `shift`, the multistep solvers `flow_shift`;
        # each gets only its own name (diffusers warns about a key the class does not take)
        shift = config.pop("flow_shift", config.get("shift", 1.0))
        if class_name in FLOW_CLASSES:
            config["shift"] = shift
        else:
            config["flow_shift"] = shift
    elif class_name in FLOW_CLASSES:
        raise UserError(f"scheduler {name!r} is for flow-matching models; this model predicts "
                        f"{config.get('prediction_type', 'epsilon')!r}")
    return cls, config
