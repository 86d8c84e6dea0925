"""Prompt weighting syntax (ComfyUI's rules, examples from its documentation)."""

from __future__ import annotations

import pytest

from ldm.text.prompt import (parse_weights, split_embedding_reference, split_embedding_words,
                             weighted_segments)


def approx(segments):
    return [(text, pytest.approx(weight)) for text, weight in segments]


@pytest.mark.parametrize("text, expected", [
    ("foo", [("foo", 1.0)]),
    ("(foo)", [("foo", 1.1)]),
    ("(foo)(bar)", [("foo", 1.1), ("bar", 1.1)]),
    ("(foo:2.0)", [("foo", 2.0)]),
    ("((foo))", [("foo", 1.21)]),
    ("((foo):1.1)", [("foo", 1.21)]),
    ("((foo:1.1))", [("foo", 1.1)]),
    ("(foo:0.0)", [("foo", 0.0)]),
    ("((foo:1.0):0.0)", [("foo", 1.0)]),
    ("(foo:-1)", [("foo", -1.0)]),
    ("foo ((((lol (cat:666) attack:100)))) baz",
     [("foo ", 1.0), ("lol ", 100.0), ("cat", 666.0), (" attack", 100.0), (" baz", 1.0)]),
    ("foo ((((lol (cat:666) attack):100))) baz",
     [("foo ", 1.0), ("lol ", 110.0), ("cat", 666.0), (" attack", 110.0), (" baz", 1.0)]),
    # the number after the last colon; anything else keeps the colon as text
    ("(a:b:1.5)", [("a:b", 1.5)]),
    ("(a:b)", [("a:b", 1.1)]),
    ("(:1.5)", [(":1.5", 1.1)]),  # a colon at the start is not a weight
    ("( spaced : 1.3 )", [(" spaced ", 1.3)]),
])
def test_weights(text, expected):
    assert parse_weights(text) == approx(expected)


def test_square_brackets_are_plain_text():
    assert weighted_segments("[foo] [bar:0.5]") == [("[foo] [bar:0.5]", 1.0)]


def test_escaped_parentheses_are_literal():
    assert weighted_segments(r"\(foo\) (bar) \(baz:2\)") == approx(
        [("(foo) ", 1.0), ("bar", 1.1), (" (baz:2)", 1.0)])
    assert weighted_segments(r"(a \(b\):1.5)") == approx([("a (b)", 1.5)])


def test_unbalanced_parentheses():
    assert weighted_segments("a (b") == [("a ", 1.0), ("(b", 1.0)]
    assert weighted_segments("a) (b)") == [("a) (b)", 1.0)]
    assert weighted_segments("(a))") == approx([("a", 1.1), (")", 1.0)])


def test_weights_can_be_disabled():
    assert weighted_segments("(a:2) b", use_weights=False) == [("(a:2) b", 1.0)]


def test_embedding_words():
    assert split_embedding_words("a cat embedding:style, b") == ["a cat ", "embedding:style, b"]
    assert split_embedding_words("embedding:x") == ["embedding:x"]
    assert split_embedding_words("a\nembedding:x\tembedding:y") == ["a\n", "embedding:x\t", "embedding:y"]
    assert split_embedding_words("noembedding:x") == ["noembedding:x"]


def test_embedding_reference():
    assert split_embedding_reference("style more words") == ("style", "more words")
    assert split_embedding_reference("style<lora:x> after") == ("style", "<lora:x> after")
    assert split_embedding_reference("style[x]") == ("style", "[x]")
    assert split_embedding_reference("  ") == ("", "")
