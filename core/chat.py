"""Chat prompts for imported checkpoints: the meta's chat template rendered with jinja2, and the token ids
that end a turn.

An imported checkpoint's meta.json carries `chat_template`, `bos_token`, `eos_token`, `eos_token_id` (an
int or, as in many generation configs, a list). Our own checkpoints carry none of these: they have no chat
mode and generation stops only at the length limit, as before.
"""

from __future__ import annotations

import functools

from core.errors import UsageError

EXTRA = "pip install -e '.[interop]'"


def has_chat_template(meta: dict) -> bool:
    return isinstance(meta.get("chat_template"), str) and bool(meta["chat_template"].strip())


def stop_ids(meta: dict) -> set[int]:
    """The ids that end generation: the meta's EOS id(s); empty for our own checkpoints."""
    eos = meta.get("eos_token_id")
    if isinstance(eos, bool):
        return set()
    if isinstance(eos, int):
        return {eos}
    if isinstance(eos, list):
        return {i for i in eos if isinstance(i, int) and not isinstance(i, bool)}
    return set()


TURN_PROBE = "The answer is 42."  # an assistant message whose end the template marks


def turn_end_id(meta: dict, tok) -> int | None:
    """The token that closes an assistant turn in the checkpoint's chat template, when it is a special token
    of its own (Qwen's and SmolLM's <|im_end|>, Llama 3's <|eot_id|>, Gemma's <end_of_turn>); else None.
    A base model's EOS is often another token (Qwen2.5's and SmolLM2's base models end text with
    <|endoftext|>), yet a conversation in its template, and so a model fine-tuned on one, ends each answer
    with this one: chat and fine-tuned models stop there too."""
    if not has_chat_template(meta):
        return None
    probe = [{"role": "user", "content": "What is the answer?"}, {"role": "assistant", "content": TURN_PROBE}]
    try:
        text = render_chat(meta, probe, add_generation_prompt=False)
    except UsageError:
        return None
    at = text.rfind(TURN_PROBE)
    ids = tok.encode(text[at + len(TURN_PROBE):]) if at >= 0 else []
    added = getattr(getattr(tok, "tokenizer", None), "get_added_tokens_decoder", dict)()  # a TokenizerWrapper's
    special = {i for i, t in added.items() if t.special}
    return ids[0] if ids and ids[0] in special else None


def chat_stop_ids(meta: dict, tok) -> set[int]:
    """What ends a reply in chat: the EOS id(s) and the template's end of turn."""
    end = turn_end_id(meta, tok)
    return stop_ids(meta) | ({end} if end is not None else set())


def generation_stop_ids(meta: dict, tok, chat: bool) -> set[int]:
    """What ends a generation (`generate`, the studio's worker): the meta's EOS id(s), in chat the template's
    end of turn too, and the end of a document (our BPE's <|endoftext|>)."""
    stops = chat_stop_ids(meta, tok) if chat else stop_ids(meta)
    return stops | ({tok.eot_id} if tok.eot_id is not None else set())


def check_messages(messages) -> list[dict]:
    """[{role, content}] with string fields, else UsageError naming the bad entry."""
    if not isinstance(messages, list) or not messages:
        raise UsageError("messages must be a non-empty list of {role, content}", field="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise UsageError(f"messages[{i}] must be {{\"role\": str, \"content\": str}}, got {m!r}",
                             field="messages")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def render_chat(meta: dict, messages: list[dict], add_generation_prompt: bool = True) -> str:
    """The conversation as the model was trained to see it (the same rendering as transformers'
    apply_chat_template: a sandboxed jinja2 environment, trim_blocks and lstrip_blocks)."""
    if not has_chat_template(meta):
        raise UsageError("this checkpoint has no chat template (meta.json `chat_template`); "
                         "chat needs an imported model that has one", field="chat_template")
    messages = check_messages(messages)
    from jinja2.exceptions import TemplateError

    template = _compiled(meta["chat_template"])
    try:
        return template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                               bos_token=meta.get("bos_token") or "", eos_token=meta.get("eos_token") or "")
    except TemplateError as exc:
        raise UsageError(f"the chat template refused the conversation: {exc}", field="messages") from None


@functools.lru_cache(maxsize=8)
def _compiled(text: str):
    """The template compiled once (SFT data renders it twice per assistant turn); UsageError when jinja2
    is missing or the template does not parse."""
    try:
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        raise UsageError(f"chat templates need jinja2 (comes with the interop extra): {EXTRA}") from None

    def raise_exception(message):  # templates call it to refuse e.g. a misplaced system message
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(text)
    except TemplateError as exc:
        raise UsageError(f"the chat template does not parse: {exc}", field="chat_template") from None
