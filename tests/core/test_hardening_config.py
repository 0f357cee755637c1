"""Issue 14, item 5 and the config parts of 14: alias bombs refused, the file size capped, every value quoted
in a message capped, train.seed and train.eval_steps bounded."""

from __future__ import annotations

import pytest

from core.config import MAX_CONFIG_BYTES, ConfigError, load_config, loads, set_override
from core.errors import MAX_QUOTED, quote

BOMB = "\n".join(["a: &a [x, x, x, x, x, x, x, x, x]"]
                 + [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
                    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
                    f"*{chr(97 + i)}]" for i in range(8)]) + "\ntrain:\n  max_steps: *i\n"


def test_alias_bomb_is_refused_from_a_file(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert "alias" in str(err.value) and len(str(err.value)) < 2000


def test_alias_bomb_is_refused_from_text_and_overrides():
    with pytest.raises(ConfigError, match="alias"):
        loads(BOMB)
    with pytest.raises(ConfigError, match="alias"):
        set_override({}, "train.max_steps=[&a [1,1], *a]")


def test_config_file_size_is_capped(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("model: {n_layer: '" + "x" * (MAX_CONFIG_BYTES + 10) + "'}\n")
    with pytest.raises(ConfigError, match="larger than"):
        load_config(str(path))


def test_values_quoted_in_messages_are_capped():
    with pytest.raises(ConfigError) as err:
        loads("model:\n  n_layer: '" + "y" * 100_000 + "'\n")
    assert len(str(err.value)) < 1000 and "chars)" in str(err.value)
    assert len(quote(10 ** 5000)) <= MAX_QUOTED + 40  # beyond int->str's digit limit: no ValueError


@pytest.mark.parametrize("text, field", [("train:\n  seed: 36893488147419103232\n", "train.seed"),
                                         ("train:\n  eval_steps: 1000000000\n", "train.eval_steps")])
def test_seed_and_eval_steps_are_bounded(text, field):
    with pytest.raises(ConfigError) as err:
        loads(text)
    assert field in str(err.value)
