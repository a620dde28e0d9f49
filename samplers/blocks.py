"""Finding a transformer's blocks, and reading a block call's inputs and outputs generically.

Blocks are the children of the ModuleLists diffusers' cache hooks look for (`transformer_blocks`,
`temporal_transformer_blocks`, `blocks`, `layers`, …), in declaration order. The order they
*run* in is learnt at run time (Latte interleaves spatial and temporal blocks), so no policy
relies on declaration order.

A block returns its hidden states, or a tuple that also carries the text stream (Flux-style);
diffusers' `TransformerBlockRegistry` says where each stream sits. Policies see both as a tuple
of tensors (hidden first) so a residual is "output − input", stream by stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from diffusers.hooks._common import _ALL_TRANSFORMER_BLOCK_IDENTIFIERS
from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry
from torch import nn

Tensors = tuple[torch.Tensor, ...]

# direct children of a block whose outputs TaylorSeer forecasts: attention and MLP/feed-forward
FEATURE_PREFIXES = ("attn", "mlp", "ff")

# ModuleLists of a model that run after its blocks, on their output: ditkit's MultiResDiT and
# VideoDiT refine branches. Cheap heads (a final norm + linear) are not listed: forecasting them
# saves nothing, but a refine branch is a quarter of the forward of the pixel MultiResDiT shipped
# before issue 22.
HEAD_IDENTIFIERS = ("branches",)


def _list_members(model: nn.Module, names) -> list[tuple[str, nn.Module]]:
    """[("list.i", module)] for the members of each ModuleList child of `model` named in `names`."""
    found = []
    for name, child in model.named_children():
        if name in names and isinstance(child, nn.ModuleList):
            found += [(f"{name}.{i}", module) for i, module in enumerate(child)]
    return found


def find_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """[(key, block)] for every transformer block, e.g. ("temporal_transformer_blocks.3", block)."""
    return _list_members(model, _ALL_TRANSFORMER_BLOCK_IDENTIFIERS)


def find_head(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """[(key, module)] for each module that runs after the blocks (see HEAD_IDENTIFIERS), e.g. ("branches.0", branch)."""
    return _list_members(model, HEAD_IDENTIFIERS)


def find_features(block: nn.Module) -> list[tuple[str, nn.Module]]:
    """[(name, module)] for the attention and MLP children of a block (attn1, attn2, ff, mlp, …)."""
    return [(name, child) for name, child in block.named_children()
            if name == "ff" or name == "mlp" or name.startswith("attn")]


def block_metadata(block: nn.Module) -> TransformerBlockMetadata:
    """The registry's metadata for this block class; unregistered blocks return their hidden states."""
    try:
        return TransformerBlockRegistry.get(type(block))
    except ValueError:
        meta = TransformerBlockMetadata(return_hidden_states_index=0)
        meta._cls = type(block)
        return meta


class BlockIO:
    """Maps one block class's call arguments and return value to (hidden, [text]) tensors and back."""

    def __init__(self, block: nn.Module):
        self.meta = block_metadata(block)
        self.streams = ("hidden_states",) if self.meta.return_encoder_hidden_states_index is None else \
            ("hidden_states", "encoder_hidden_states")
        self.tuple_len: int | None = None  # learnt from the first computed call

    def inputs(self, args: tuple, kwargs: dict) -> Tensors:
        names = {"hidden_states": self.meta.hidden_states_argument_name,
                 "encoder_hidden_states": self.meta.encoder_hidden_states_argument_name}
        return tuple(self.meta._get_parameter_from_args_kwargs(names[s], args, kwargs) for s in self.streams)

    def split(self, output: Any) -> Tensors:
        if isinstance(output, torch.Tensor):
            self.tuple_len = 0
            return (output,)
        self.tuple_len = len(output)
        out = (output[self.meta.return_hidden_states_index],)
        if len(self.streams) == 2:
            out += (output[self.meta.return_encoder_hidden_states_index],)
        return out

    def join(self, tensors: Tensors) -> Any:
        if not self.tuple_len:
            return tensors[0]
        out = [None] * self.tuple_len
        out[self.meta.return_hidden_states_index] = tensors[0]
        if len(self.streams) == 2:
            out[self.meta.return_encoder_hidden_states_index] = tensors[1]
        return tuple(out)


@dataclass
class BlockCall:
    """One call of a block, as a policy sees it.

    key: the block's name ("transformer_blocks.2"); position: its place in this forward's run order
    (0 = the first block run); is_tail: it ran last in the previous forward of this context.
    """

    key: str
    position: int
    is_tail: bool
    io: BlockIO
    args: tuple
    kwargs: dict
    run: Callable[..., Any]

    @property
    def inputs(self) -> Tensors:
        return self.io.inputs(self.args, self.kwargs)

    def compute(self) -> Tensors:
        """Runs the block for real → its output streams."""
        return self.io.split(self.run(*self.args, **self.kwargs))

    def result(self, tensors: Tensors) -> Any:
        """Output streams → the value the block would have returned."""
        return self.io.join(tensors)


def add(a: Tensors, b: Tensors) -> Tensors:
    return tuple(x + y for x, y in zip(a, b))


def sub(a: Tensors, b: Tensors) -> Tensors:
    return tuple(x - y for x, y in zip(a, b))
