"""Tiny Hugging Face models and tokenizers built offline for the interop tests (random weights, saved with
save_pretrained); nothing is downloaded."""

from __future__ import annotations

import os

import torch

SAMPLE = ("Hello world! The quick brown fox jumps over the lazy dog 12345.\n"
          "Grüße aus Köln, ça va? Ñandú. Привет, мир! 你好，世界。こんにちは 🙂 <|im_start|>user\nhi<|im_end|>")
CORPUS = [SAMPLE, "def f(x):\n    return x * 2  # comment", "Lorem ipsum dolor sit amet, consectetur.",
          "Добрый день. Český jazyk. Ελληνικά. עברית. العربية. हिन्दी.", "tokens tokens tokenizer tokenize"]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def byte_bpe(vocab_size: int = 400, pre: str = "gpt2"):
    """A byte-level BPE tokenizers.Tokenizer (GPT-2 regex, or Qwen2's split + ByteLevel) with specials."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    if pre == "qwen2":
        split = pre_tokenizers.Split(Regex(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?"
                                           r"[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"), "isolated")
        tok.pre_tokenizer = pre_tokenizers.Sequence([split, pre_tokenizers.ByteLevel(add_prefix_space=False,
                                                                                      use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 3, trainer)
    return tok


def save_tokenizer(folder: str, pre: str = "gpt2", vocab_size: int = 400):
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=byte_bpe(vocab_size, pre), bos_token="<|im_start|>",
                                   eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)
    return fast


def _scale_weights(model, std: float = 0.3) -> None:
    """Beyond the tiny default init so logits are far from uniform and errors would show."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "ln_" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p)) if p.dim() == 1 and name.endswith("weight") else \
                    p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(std * torch.randn_like(p))


def tiny_hf_model(kind: str, folder: str, vocab_size: int = 400):
    """Save a tiny `kind` (gpt2 | llama | qwen2 | mistral | qwen3) model + tokenizer in `folder`; returns the
    model. Qwen3's heads are 128 wide over a width of 32 (head_dim, as Qwen3-0.6B's 16 x 128 over 1024), with
    learned QK-norm weights."""
    import transformers as tf

    os.makedirs(folder, exist_ok=True)
    tok = save_tokenizer(folder, "qwen2" if kind in ("qwen2", "qwen3") else "gpt2", vocab_size)
    V = len(tok)
    common = dict(vocab_size=V, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    if kind == "gpt2":
        cfg = tf.GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, **common)
        model = tf.GPT2LMHeadModel(cfg)
    elif kind == "llama":
        cfg = tf.LlamaConfig(hidden_size=32, num_attention_heads=4, num_key_value_heads=2, intermediate_size=48,
                             num_hidden_layers=2, max_position_embeddings=64, tie_word_embeddings=False,
                             rms_norm_eps=1e-6, rope_theta=5000.0, **common)
        model = tf.LlamaForCausalLM(cfg)
    elif kind == "mistral":
        cfg = tf.MistralConfig(hidden_size=32, num_attention_heads=4, num_key_value_heads=1, intermediate_size=48,
                               num_hidden_layers=2, max_position_embeddings=64, sliding_window=None,
                               tie_word_embeddings=False, head_dim=8, **common)
        model = tf.MistralForCausalLM(cfg)
    elif kind == "qwen3":  # head_dim 128: transformers' GGUF loader takes Qwen3's default, not key_length
        cfg = tf.Qwen3Config(hidden_size=32, num_attention_heads=4, num_key_value_heads=2, head_dim=128,
                             intermediate_size=48, num_hidden_layers=2, max_position_embeddings=64,
                             tie_word_embeddings=True, rope_theta=1000000.0, rms_norm_eps=1e-6, **common)
        model = tf.Qwen3ForCausalLM(cfg)
    else:
        cfg = tf.Qwen2Config(hidden_size=32, num_attention_heads=4, num_key_value_heads=2, intermediate_size=48,
                             num_hidden_layers=2, max_position_embeddings=64, tie_word_embeddings=True,
                             rope_theta=1000000.0, **common)
        model = tf.Qwen2ForCausalLM(cfg)
    _scale_weights(model)
    model.eval()
    model.save_pretrained(folder)
    return model


def lora_finetune(folder, base: str, targets=("attn_qkv", "attn_out", "mlp_in", "mlp_out"), rank: int = 4,
                  steps: int = 4) -> str:
    """A LoRA fine-tune of the checkpoint `base` on a small text in `folder` (at a high rate, so every B is far
    from zero); returns its latest checkpoint."""
    import yaml

    from core.cli import main
    from core.layout import latest_checkpoint

    folder = str(folder)
    text, data, run = (os.path.join(folder, n) for n in ("lora-text.txt", "lora-data", "lora-run"))
    with open(text, "w", encoding="utf-8") as fh:
        fh.write("\n".join(CORPUS * 40))
    assert main(["prepare", "--input", text, "--out", data, "--tokenizer-from", base]) == 0
    train = {"max_steps": steps, "warmup_steps": 0, "lr": 0.05, "min_lr": 0.05, "batch_size": 4,
             "eval_interval": 0, "checkpoint_interval": 0, "device": "cpu", "precision": "fp32",
             "init_from": base, "finetune": "lora", "lora_rank": rank, "lora_alpha": 2.0 * rank,
             "lora_targets": list(targets)}
    config = os.path.join(folder, "lora.yaml")
    with open(config, "w", encoding="utf-8") as fh:
        yaml.safe_dump({"data": {"dir": data}, "train": train, "run": {"dir": run, "save_attention": False}}, fh)
    assert main(["train", "--config", config]) == 0
    return latest_checkpoint(run)
