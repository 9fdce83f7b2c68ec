"""``emailapi.lib.jsondepth``: nesting measured without decoding or recursing."""

from __future__ import annotations

import json

import pytest

from emailapi.lib import jsondepth


def nested(levels: int, inner: str = "1") -> str:
    return "[" * levels + inner + "]" * levels


@pytest.mark.parametrize("levels", [0, 1, 31, 32])
def test_nesting_up_to_the_limit_is_not_too_deep(levels):
    assert not jsondepth.deeper_than(nested(levels), 32)
    assert jsondepth.loads(nested(levels), 32) == json.loads(nested(levels))


@pytest.mark.parametrize("levels", [33, 1000, 100_000])
def test_nesting_beyond_the_limit_is_too_deep(levels):
    assert jsondepth.deeper_than(nested(levels), 32)
    with pytest.raises(jsondepth.TooDeep, match="nested deeper than 32 levels"):
        jsondepth.loads(nested(levels), 32)


def test_objects_and_arrays_count_alike():
    text = '{"a": [{"b": [1]}]}'
    assert jsondepth.deeper_than(text, 3)
    assert not jsondepth.deeper_than(text, 4)


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"css": "{" * 5000, "list": "[" * 5000, "escaped": '\\"[[[[' * 100})
    assert not jsondepth.deeper_than(text, 2)
    assert jsondepth.loads(text, 2)["css"] == "{" * 5000


def test_an_escaped_quote_does_not_end_a_string():
    # If \" ended the string, the brackets after it would count.
    text = '["a\\"' + "[" * 40 + '", 1]'
    assert not jsondepth.deeper_than(text, 1)
    assert json.loads(text) == ['a"' + "[" * 40, 1]
    # An escaped backslash does end it: the brackets after it count.
    text = '["a\\\\", ' + "[" * 3 + "]" * 3 + "]"
    assert json.loads(text) == ["a\\", [[[]]]]
    assert jsondepth.deeper_than(text, 3)


def test_siblings_are_not_depth():
    text = json.dumps([[1]] * 10_000)
    assert not jsondepth.deeper_than(text, 2)
    assert jsondepth.deeper_than(text, 1)


def test_text_that_is_not_json_is_left_to_the_decoder():
    for text in ['["unterminated' + "[" * 50, "]" * 50 + "[" * 10, '"' + "[" * 50]:
        assert not jsondepth.deeper_than(text, 32)
        with pytest.raises(ValueError):
            jsondepth.loads(text, 32)


def test_bytes_are_decoded_as_json_loads_decodes_them():
    for raw in ['{"a": "é"}'.encode(), '{"a": "é"}'.encode("utf-16"),
                '{"a": "é"}'.encode("utf-32-le")]:
        assert jsondepth.loads(raw, 1) == {"a": "é"} == json.loads(raw)
    with pytest.raises(ValueError):
        jsondepth.loads(b'{"a": "\xff"}', 1)


def test_too_deep_is_a_value_error():
    # Callers that refuse what the decoder refuses (except ValueError) refuse this too.
    assert issubclass(jsondepth.TooDeep, ValueError)
