"""Run-config YAML as text: the one writer of config text, for the engine and the studio.

Every edit goes through ruamel.yaml's round-trip mode, so comments, blank lines, key order and the
quoting of untouched keys survive: the form and the YAML tab, new run / new-from / fork, and the copy of
the config a `train --set ...` run records in its folder. A missing key or section is added where the
dataclasses in core.config put it. Each value written reads back through `core.config.loads` (PyYAML,
YAML 1.1) as the value given: floats keep a dot (`1.0e-08`), strings that YAML 1.1 would read as
something else (`yes`, `010`) are quoted. core.config's `yaml.safe_load` stays the validating loader.

Anchors and aliases (`&a`, `*a`) are refused: a config has no use for them and they are how a few lines
of YAML expand into gigabytes. Torch-free and Qt-free (the studio imports it).
"""

from __future__ import annotations

import io
import math
import os
import re
from dataclasses import fields
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from core.config import SECTION_TYPES, SECTIONS, Config, ConfigError, Problem, set_override
from core.errors import quote
from core.layout import CONFIG, atomic_write

RESOLVED = "config.resolved.yaml"  # the validated config with absolute paths: what reproduces a run
_STR_TAG = "tag:yaml.org,2002:str"
_PATH_FIELDS = tuple(f"{s}.{f.name}" for s, cls in SECTION_TYPES.items() for f in fields(cls)
                     if f.metadata.get("path"))


# ------------------------------------------------------------------------------ writing values
class _Representer(RoundTripRepresenter):
    """Values as PyYAML (YAML 1.1) reads them back: `null` not an empty value, floats with a dot."""


def _represent_none(rep: RoundTripRepresenter, _value: None):
    return rep.represent_scalar("tag:yaml.org,2002:null", "null")


def _represent_float(rep: RoundTripRepresenter, value: float):
    return rep.represent_scalar("tag:yaml.org,2002:float", float_text(value))


_Representer.add_representer(type(None), _represent_none)
_Representer.add_representer(float, _represent_float)


def float_text(value: float) -> str:
    """A float as YAML 1.1 text that reads back exactly: `1.0e-08`, not `1e-08` (a string to PyYAML)."""
    text = repr(float(value))
    if text in ("inf", "-inf", "nan"):
        return {"inf": ".inf", "-inf": "-.inf", "nan": ".nan"}[text]
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa if '.' in mantissa else mantissa + '.0'}e{int(exponent):+03d}"
    return text


def _node(value: Any, old: Any = None) -> Any:
    """A Python value as ruamel data: lists inline (`[0.9, 0.95]`) unless the old list was a block."""
    if isinstance(value, str):
        return DoubleQuotedScalarString(value) if _needs_quotes(value) else value
    if isinstance(value, (list, tuple)):
        seq = CommentedSeq(_node(v) for v in value)
        if not (isinstance(old, CommentedSeq) and not old.fa.flow_style()):
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, dict):
        return CommentedMap((k, _node(v)) for k, v in value.items())
    return value


def _needs_quotes(text: str) -> bool:
    """Whether a plain `text` would not read back as this string in YAML 1.1 (PyYAML)."""
    if not text or text != text.strip() or any(c in text for c in "\n\t\r"):
        return True
    tag = pyyaml.resolver.Resolver().resolve(pyyaml.ScalarNode, text, (True, False))
    return tag != _STR_TAG


# ------------------------------------------------------------------------------ reading text
def _yaml(text: str = "") -> YAML:
    """A round-trip YAML instance indenting as `text` does."""
    y = YAML(typ="rt")
    y.Representer = _Representer
    y.Composer = _Composer
    y.preserve_quotes = True
    y.width = 1 << 16  # never fold a long value onto more lines
    y.indent(**_guess_indent(text))
    return y


class _AnchorFound(Exception):
    """An anchor or alias met while composing: refused before any value is built."""


class _Composer(Composer):
    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None):
            raise _AnchorFound(event.start_mark.line + 1 if event.start_mark else "?")
        return super().compose_node(parent, index)


def _guess_indent(text: str) -> dict:
    """ruamel's indent settings for the text's own layout (mapping step, list dash offset)."""
    mapping, offset, parent = None, None, None
    for line in text.splitlines():
        body = line.strip()
        if not body or body.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if body.startswith("- ") or body == "-":
            if offset is None and parent is not None:
                offset = max(indent - parent, 0)
            continue
        if mapping is None and indent > 0:
            mapping = indent
        parent = indent if re.match(r"^[^#'\"]*:\s*(#.*)?$", body) else None
    mapping = mapping or 2
    offset = offset or 0
    return {"mapping": mapping, "sequence": offset + 2, "offset": offset}


def _load(text: str, source: str | None = None) -> CommentedMap | None:
    """Round-trip data of config text; ConfigError for text that is not YAML, uses anchors, or is not
    a mapping. None for an empty (or comments-only) text."""
    try:
        data = _yaml(text).load(text)
    except _AnchorFound as exc:
        raise ConfigError([Problem("", f"line {exc.args[0]}: YAML anchors and aliases (&name, *name) are not "
                                       f"supported in a config; write the value out")], source) from None
    except YAMLError as exc:
        message = str(exc).split("To suppress this check")[0]  # ruamel's hint about duplicate keys
        raise ConfigError([Problem("", "invalid YAML: " + " ".join(message.split()))], source) from None
    if data is not None and not isinstance(data, CommentedMap):
        raise ConfigError([Problem("", f"expected a mapping with sections {', '.join(SECTIONS)}, got "
                                       f"{type(data).__name__}")], source)
    return data


def _dump(data: CommentedMap, text: str) -> str:
    out = io.StringIO()
    _yaml(text).dump(data, out)
    return out.getvalue()


def key_line(text: str, path: str) -> int | None:
    """0-based line of a dotted path's key (`section` or `section.key`) in config text, or None."""
    try:
        data = _load(text)
    except ConfigError:
        return None
    parts = path.split(".")
    node = data
    line = None
    for part in parts:
        if not isinstance(node, CommentedMap) or part not in node:
            return None
        line = node.lc.key(part)[0]
        node = node[part]
    return line


# ------------------------------------------------------------------------------ comments
def _trailing_slot(mapping: CommentedMap, key: Any) -> tuple[list, int]:
    """Where ruamel keeps the comment lines that follow `key`'s value: (list, index) at the deepest
    last entry, since the lines after a section belong to its last key."""
    value = mapping[key]
    if isinstance(value, CommentedMap) and len(value):
        return _trailing_slot(value, list(value)[-1])
    if isinstance(value, CommentedSeq) and len(value) and not value.fa.flow_style():
        return value.ca.items.setdefault(len(value) - 1, [None, None, None, None]), 0
    return mapping.ca.items.setdefault(key, [None, None, None, None]), 2


def _take_following_lines(mapping: CommentedMap, key: Any) -> CommentToken | None:
    """Detach the whole lines (blank lines, comments) after `key`'s value; its end-of-line comment stays."""
    slot, i = _trailing_slot(mapping, key)
    token = slot[i]
    if token is None:
        return None
    first, newline, rest = token.value.partition("\n")
    if not rest:
        return None
    slot[i] = CommentToken(first + newline, token.start_mark, None) if first.strip() else None
    return CommentToken(rest, CommentMark(0), None)


def _put_following_lines(mapping: CommentedMap, key: Any, token: CommentToken | None) -> None:
    if token is None:
        return
    slot, i = _trailing_slot(mapping, key)
    if slot[i] is None:
        slot[i] = CommentToken("\n" + token.value, CommentMark(0), None)
    else:
        value = slot[i].value
        slot[i] = CommentToken(value + ("" if value.endswith("\n") else "\n") + token.value,
                               slot[i].start_mark, None)


# ------------------------------------------------------------------------------ edits
def _order(section: str | None) -> list[str]:
    """Key order of a section's dataclass (of the sections for None)."""
    if section is None:
        return list(SECTIONS)
    cls = SECTION_TYPES.get(section)
    return [f.name for f in fields(cls)] if cls else []


def _insert(mapping: CommentedMap, key: str, value: Any, order: list[str]) -> None:
    """Add a missing key after the last present key that the dataclass order puts before it (unknown
    keys go last); the comment lines that followed that key now follow the new one."""
    keys = list(mapping)
    pos = len(keys)
    if key in order:
        before = [i for i, k in enumerate(keys) if k in order and order.index(k) < order.index(key)]
        pos = before[-1] + 1 if before else 0
    following = _take_following_lines(mapping, keys[pos - 1]) if pos else None
    mapping.insert(pos, key, value)
    _put_following_lines(mapping, key, following)


def _set(data: CommentedMap, path: str, value: Any) -> None:
    section, dot, key = path.partition(".")
    if not section or (dot and not key) or "." in key:
        raise ConfigError([Problem(path, f"{quote(path)}: expected section.key")])
    if not dot:
        _assign(data, section, value, _order(None))
        return
    if data.get(section) is None:  # a new section is built whole, so comment lines can follow its last key
        _assign(data, section, {key: value}, _order(None))
        return
    sec = data[section]
    if not isinstance(sec, CommentedMap):
        raise ConfigError([Problem(section, f"{section}: expected a mapping, got {quote(sec)}")])
    _assign(sec, key, value, _order(section))


def _assign(mapping: CommentedMap, key: str, value: Any, order: list[str]) -> None:
    if key not in mapping:
        _insert(mapping, key, _node(value), order)
        return
    old = mapping[key]
    if _same(old, value):
        return  # keep the text as written (`3e-4`, quotes, layout)
    nested = isinstance(old, (CommentedMap, CommentedSeq)) or isinstance(value, (dict, list, tuple))
    following = _take_following_lines(mapping, key) if nested else None
    mapping[key] = _node(value, old)
    _put_following_lines(mapping, key, following)


def _same(old: Any, new: Any) -> bool:
    """Whether the value in the text already is `new`, of the same kind (1 is not 1.0, "1" is not 1)."""
    if isinstance(new, (list, tuple)):
        return (isinstance(old, CommentedSeq) and len(old) == len(new)
                and all(_same(a, b) for a, b in zip(old, new, strict=True)))
    if isinstance(new, dict) or isinstance(old, (CommentedMap, CommentedSeq)):
        return False
    return _kind(old) is _kind(new) and old == new


def _kind(value: Any) -> type:
    return next((t for t in (bool, float, int, str) if isinstance(value, t)), type(value))


def apply_changes(text: str, changes: dict[str, Any], source: str | None = None) -> str:
    """`text` with each dotted path (`train.lr`) set to its value; comments, blank lines, key order and
    untouched keys kept; missing keys added in dataclass order. ConfigError for text that cannot be
    edited (not YAML, anchors, not a mapping) or a value that would not read back as given."""
    data = _load(text, source)
    head = ""
    if data is None:  # empty or only comments: keep those lines above the new keys
        head = text.rstrip() + "\n" if text.strip() else ""
        data = CommentedMap()
    for path, value in changes.items():
        _set(data, path, value)
    out = head + _dump(data, text) if len(data) else text
    _check_reads_back(out, changes, source)
    return out


def _check_reads_back(text: str, changes: dict[str, Any], source: str | None) -> None:
    """Each written value reads back (PyYAML, as core.config does) as the value given."""
    raw = pyyaml.safe_load(text) or {}
    for path, value in changes.items():
        got: Any = raw
        for part in path.split("."):
            got = got.get(part) if isinstance(got, dict) else None
        want = list(value) if isinstance(value, tuple) else value
        if got != want and not (isinstance(want, float) and isinstance(got, str) and _float_eq(got, want)):
            raise ConfigError([Problem(path, f"{path}: {quote(value)} cannot be written so that it reads back "
                                             f"(got {quote(got)})")], source)


def _float_eq(text: str, value: float) -> bool:
    try:
        return float(text) == value  # `3e-4` as written by a person: a string to YAML 1.1, a float to us
    except ValueError:
        return False


def set_value(text: str, path: str, value: Any) -> str:
    """`text` with one dotted path set to `value` (see apply_changes)."""
    return apply_changes(text, {path: value})


def remove_value(text: str, path: str) -> str:
    """`text` without a dotted path's key (its comment lines below stay); unchanged when it is absent."""
    data = _load(text)
    section, _, key = path.partition(".")
    mapping = data.get(section) if key and data is not None else data
    name = key or section
    if not isinstance(mapping, CommentedMap) or name not in mapping:
        return text
    keys = list(mapping)
    following = _take_following_lines(mapping, name)
    del mapping[name]
    if following is not None and keys.index(name) > 0:
        _put_following_lines(mapping, keys[keys.index(name) - 1], following)
    return _dump(data, text)


def parse_override(assignment: str) -> tuple[str, Any]:
    """(`section.key`, value) of one `--set section.key=value`, parsed exactly as core.config does."""
    raw: dict = {}
    set_override(raw, assignment)
    ((section, values),) = raw.items()
    ((key, value),) = values.items()
    return f"{section}.{key}", value


def apply_overrides(text: str, overrides: list[str] | tuple[str, ...], source: str | None = None) -> str:
    """`text` with `--set section.key=value` assignments applied in place (later ones win)."""
    changes = {}
    for assignment in overrides:
        path, value = parse_override(assignment)
        changes[path] = _as_number(path, value)
    return apply_changes(text, changes, source)


def _as_number(path: str, value: Any) -> Any:
    """`3e-4` for a float field: YAML 1.1 reads it as text and the config takes it as the number it is;
    write that number, not the quoted text."""
    section, _, key = path.partition(".")
    kind = {f.name: f.type for f in fields(SECTION_TYPES[section])}.get(key) if section in SECTION_TYPES else None
    if kind in (float, "float") and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value


def dump_new(data: Config | dict) -> str:
    """Config data as new block-style text, keys in dataclass order, lists inline."""
    raw = data.to_dict() if isinstance(data, Config) else data
    changes = {}
    for section, values in raw.items():
        if isinstance(values, dict):
            changes.update({f"{section}.{key}": value for key, value in values.items()})
        else:
            changes[str(section)] = values
    return apply_changes("", changes)


# ------------------------------------------------------------------------------ a run's folder
def save_run_configs(cfg: Config, config_path: str, overrides: list[str] | tuple[str, ...] = ()) -> None:
    """What a training run records in RUN_DIR: config.yaml, the config file's text with each `--set`
    applied in place (comments kept; paths re-pointed relative to the run folder when the file lives
    elsewhere), and config.resolved.yaml, the validated config with absolute paths. `cfg` is the config
    loaded from `config_path` with those overrides (paths resolved). Both written atomically."""
    run_dir = cfg.run.dir
    atomic_write(os.path.join(run_dir, RESOLVED), dump_new(cfg))
    target = os.path.join(run_dir, CONFIG)
    relative = {}
    if os.path.abspath(os.path.dirname(os.path.abspath(config_path))) != os.path.abspath(run_dir):
        raw = cfg.to_dict()
        for path in _PATH_FIELDS:
            section, key = path.split(".")
            if raw[section][key]:
                relative[path] = os.path.relpath(raw[section][key], run_dir)
    try:
        with open(config_path, encoding="utf-8") as fh:
            text = apply_changes(apply_overrides(fh.read(), overrides, config_path), relative, config_path)
    except ConfigError:
        # Text PyYAML took but a round trip cannot (duplicate keys, anchors): record the values instead.
        raw = cfg.to_dict()
        for path, value in relative.items():
            section, key = path.split(".")
            raw[section][key] = value
        text = dump_new(raw)
    try:
        with open(target, encoding="utf-8") as fh:
            if fh.read() == text:
                return  # the run's own config, unchanged: leave the file alone
    except (OSError, UnicodeDecodeError):  # missing or damaged: rewritten below
        pass
    atomic_write(target, text)
