"""MiniLM caption embeddings, computed once per distinct caption and kept in memory.

Why: the text encoder is a 6-layer BERT per caption — as costly as a good part of a DiT-Ti step
on CPU — but Shapes World has a finite caption set (~6k canonical strings plus paraphrases), so
after the first few hundred steps every lookup is a hit. At 32 tokens × 384 in bf16 a caption
costs 24 KiB: the whole set fits in a few hundred MiB.

Embeddings come from `pipelines.core.text_encoder.encode_text`, the function the pipeline uses too; tokens are stored in bf16 (the rounding is far below
what the DiT resolves), the pooled vector in float32.
"""

from __future__ import annotations

import torch

from pipelines.core.text_encoder import encode_text, load_minilm


class TextEmbeddingCache:
    """caption → (tokens (L, E) bf16, mask (L,) int64, pooled (E,) float32), filled on first sight.

    New captions are encoded in chunks of a constant `chunk_size` rows (padded with ""), so a
    caption's embedding never depends on which other captions happened to be new in the same
    step — a resumed run reads bit-identical embeddings to an uninterrupted one.
    """

    def __init__(self, text_encoder, tokenizer, max_length: int = 32, chunk_size: int = 32):
        self.text_encoder = text_encoder.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.chunk_size = chunk_size
        self._entries: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_minilm(cls, max_length: int = 32, **kwargs) -> "TextEmbeddingCache":
        """A cache over the shipped MiniLM (loaded from its package, offline)."""
        text_encoder, tokenizer = load_minilm()
        return cls(text_encoder, tokenizer, max_length, **kwargs)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, caption: str) -> bool:
        return caption in self._entries

    @torch.no_grad()
    def _encode(self, captions: list[str]) -> None:
        """Encode exactly `chunk_size` captions and store the real (non-padding) ones."""
        rows = captions + [""] * (self.chunk_size - len(captions))
        hidden, mask, pooled = encode_text(self.text_encoder, self.tokenizer, rows, self.max_length)  # (N, L, E)
        pooled = pooled.float()
        for i, caption in enumerate(captions):
            self._entries[caption] = (hidden[i].to("cpu", torch.bfloat16), mask[i].to("cpu", torch.int64),
                                      pooled[i].to("cpu"))

    def fill(self, captions: list[str]) -> int:
        """Encode the captions not seen yet (in first-seen order); returns how many were new."""
        new = list(dict.fromkeys(c for c in captions if c not in self._entries))
        for start in range(0, len(new), self.chunk_size):
            self._encode(new[start:start + self.chunk_size])
        return len(new)

    def lookup(self, captions: list[str], device="cpu") -> dict:
        """→ the DiT's text kwargs for these captions (encoding any new ones first):
        encoder_hidden_states (B, L, E) float32, encoder_attention_mask (B, L), pooled_text (B, E)."""
        self.fill(captions)
        entries = [self._entries[c] for c in captions]
        tokens = torch.stack([e[0] for e in entries]).float()
        mask = torch.stack([e[1] for e in entries])
        pooled = torch.stack([e[2] for e in entries])
        return {"encoder_hidden_states": tokens.to(device), "encoder_attention_mask": mask.to(device),
                "pooled_text": pooled.to(device)}
