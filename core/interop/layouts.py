"""Which of our tensors is which tensor in Hugging Face and GGUF naming, per architecture.

Our names (core/model.py): tok_emb, pos_emb, blocks.{i}.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc,
mlp.c_gate, mlp.c_proj}, ln_f, lm_head. Each table maps our name (under `blocks.{i}.` for block tensors) to
the other side's name, written as:
    "name"            the same tensor
    "name:T"          transposed (GPT-2's Conv1D stores (in, out); nn.Linear stores (out, in))
    ("q", "k", "v")   our fused c_attn is these three stacked along the output dimension
Both directions (import and export) read the same tables.
"""

from __future__ import annotations

import re

# ------------------------------------------------------------------------------ Hugging Face
HF_GPT2_TOP = {"tok_emb.weight": "wte.weight", "pos_emb.weight": "wpe.weight", "ln_f.weight": "ln_f.weight",
               "ln_f.bias": "ln_f.bias"}
HF_GPT2_BLOCK = {  # under h.{i}.
    "ln_1.weight": "ln_1.weight", "ln_1.bias": "ln_1.bias",
    "attn.c_attn.weight": "attn.c_attn.weight:T", "attn.c_attn.bias": "attn.c_attn.bias",
    "attn.c_proj.weight": "attn.c_proj.weight:T", "attn.c_proj.bias": "attn.c_proj.bias",
    "ln_2.weight": "ln_2.weight", "ln_2.bias": "ln_2.bias",
    "mlp.c_fc.weight": "mlp.c_fc.weight:T", "mlp.c_fc.bias": "mlp.c_fc.bias",
    "mlp.c_proj.weight": "mlp.c_proj.weight:T", "mlp.c_proj.bias": "mlp.c_proj.bias",
}
HF_LLAMA_TOP = {"tok_emb.weight": "model.embed_tokens.weight", "ln_f.weight": "model.norm.weight",
                "lm_head.weight": "lm_head.weight"}
HF_LLAMA_BLOCK = {  # under model.layers.{i}.
    "ln_1.weight": "input_layernorm.weight", "ln_2.weight": "post_attention_layernorm.weight",
    "attn.c_attn.weight": ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"),
    "attn.c_attn.bias": ("self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"),
    "attn.c_proj.weight": "self_attn.o_proj.weight", "attn.c_proj.bias": "self_attn.o_proj.bias",
    "attn.q_norm.weight": "self_attn.q_norm.weight", "attn.k_norm.weight": "self_attn.k_norm.weight",  # Qwen3
    "mlp.c_gate.weight": "mlp.gate_proj.weight", "mlp.c_gate.bias": "mlp.gate_proj.bias",
    "mlp.c_fc.weight": "mlp.up_proj.weight", "mlp.c_fc.bias": "mlp.up_proj.bias",
    "mlp.c_proj.weight": "mlp.down_proj.weight", "mlp.c_proj.bias": "mlp.down_proj.bias",
}

# -------------------------------------------------------------------------------------- GGUF
GGUF_GPT2_TOP = {"tok_emb.weight": "token_embd.weight", "pos_emb.weight": "position_embd.weight",
                 "ln_f.weight": "output_norm.weight", "ln_f.bias": "output_norm.bias",
                 "lm_head.weight": "output.weight"}
GGUF_GPT2_BLOCK = {  # under blk.{i}.
    "ln_1.weight": "attn_norm.weight", "ln_1.bias": "attn_norm.bias",
    "attn.c_attn.weight": "attn_qkv.weight", "attn.c_attn.bias": "attn_qkv.bias",
    "attn.c_proj.weight": "attn_output.weight", "attn.c_proj.bias": "attn_output.bias",
    "ln_2.weight": "ffn_norm.weight", "ln_2.bias": "ffn_norm.bias",
    "mlp.c_fc.weight": "ffn_up.weight", "mlp.c_fc.bias": "ffn_up.bias",
    "mlp.c_proj.weight": "ffn_down.weight", "mlp.c_proj.bias": "ffn_down.bias",
}
GGUF_LLAMA_TOP = {"tok_emb.weight": "token_embd.weight", "ln_f.weight": "output_norm.weight",
                  "lm_head.weight": "output.weight"}
GGUF_LLAMA_BLOCK = {
    "ln_1.weight": "attn_norm.weight", "ln_2.weight": "ffn_norm.weight",
    "attn.c_attn.weight": ("attn_q.weight", "attn_k.weight", "attn_v.weight"),
    "attn.c_attn.bias": ("attn_q.bias", "attn_k.bias", "attn_v.bias"),
    "attn.c_proj.weight": "attn_output.weight", "attn.c_proj.bias": "attn_output.bias",
    "attn.q_norm.weight": "attn_q_norm.weight", "attn.k_norm.weight": "attn_k_norm.weight",  # qwen3
    "mlp.c_gate.weight": "ffn_gate.weight", "mlp.c_gate.bias": "ffn_gate.bias",
    "mlp.c_fc.weight": "ffn_up.weight", "mlp.c_fc.bias": "ffn_up.bias",
    "mlp.c_proj.weight": "ffn_down.weight", "mlp.c_proj.bias": "ffn_down.bias",
}

# family -> (top table, block table, block prefix with {i})
HF_LAYOUTS = {"gpt2": (HF_GPT2_TOP, HF_GPT2_BLOCK, "h.{i}."),
              "llama": (HF_LLAMA_TOP, HF_LLAMA_BLOCK, "model.layers.{i}.")}
GGUF_LAYOUTS = {"gpt2": (GGUF_GPT2_TOP, GGUF_GPT2_BLOCK, "blk.{i}."),
                "llama": (GGUF_LLAMA_TOP, GGUF_LLAMA_BLOCK, "blk.{i}.")}

_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")


def other_name(layouts: dict, family: str, ours: str):
    """The other side's name (str, 'name:T' or a q/k/v tuple) for one of our tensor names; KeyError if none."""
    top, block, prefix = layouts[family]
    m = _BLOCK.match(ours)
    if not m:
        return top[ours]
    spec = block[m.group(2)]
    head = prefix.format(i=m.group(1))
    if isinstance(spec, tuple):
        return tuple(head + s for s in spec)
    return head + spec
