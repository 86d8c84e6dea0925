"""Prompt weighting syntax, as ComfyUI reads it.

- ``(words)`` multiplies the weight of ``words`` by 1.1, once per nesting level;
- ``(words:1.3)`` sets the weight to 1.3 (the number after the group's *last* colon; if it is
  not a number the colon is plain text and the group gets the 1.1 factor);
- ``\\(`` and ``\\)`` are literal parentheses;
- square brackets have no meaning (A1111's ``[words]`` de-emphasis is not ComfyUI syntax);
- the weight of an inner group with an explicit number replaces, not multiplies, the outer
  weight: ``((a:1.5))`` is 1.5, ``((a):1.5)`` is 1.5 × 1.1.

An unbalanced ``)`` makes the rest of the text literal until a ``(`` rebalances it, and an
unclosed ``(`` is kept as text — the same outcome as ComfyUI's parser.
"""

from __future__ import annotations

import re

EMPHASIS = 1.1
EMBEDDING_PREFIX = "embedding:"

# Escaped parentheses are swapped for control-character pairs while parsing.
_ESCAPED_CLOSE = "\0\1"
_ESCAPED_OPEN = "\0\2"
# A word that starts an embedding reference: "embedding:" at the start or after whitespace.
_EMBEDDING_SPLIT = re.compile(r"(?<=\s)" + re.escape(EMBEDDING_PREFIX))


def escape_parentheses(text: str) -> str:
    return text.replace("\\)", _ESCAPED_CLOSE).replace("\\(", _ESCAPED_OPEN)


def unescape_parentheses(text: str) -> str:
    return text.replace(_ESCAPED_CLOSE, ")").replace(_ESCAPED_OPEN, "(")


def split_top_level_groups(text: str) -> list[str]:
    """Split into plain runs and top-level ``( … )`` groups, keeping the parentheses.

    ``"a (b (c)) d"`` → ``["a ", "(b (c))", " d"]``.
    """
    parts: list[str] = []
    current = ""
    depth = 0
    for char in text:
        if char == "(":
            if depth == 0:
                if current:
                    parts.append(current)
                current = ""
            current += char
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                parts.append(current + char)
                current = ""
            else:
                current += char
        else:
            current += char
    if current:
        parts.append(current)
    return parts


def parse_weights(text: str, weight: float = 1.0) -> list[tuple[str, float]]:
    """``text`` (already escaped) → ``[(segment, weight), …]`` in reading order."""
    segments: list[tuple[str, float]] = []
    for part in split_top_level_groups(text):
        if len(part) >= 2 and part[0] == "(" and part[-1] == ")":
            inner = part[1:-1]
            inner_weight = weight * EMPHASIS
            colon = inner.rfind(":")
            if colon > 0:
                try:
                    inner_weight = float(inner[colon + 1:])
                    inner = inner[:colon]
                except ValueError:
                    pass
            segments += parse_weights(inner, inner_weight)
        else:
            segments.append((part, weight))
    return segments


def weighted_segments(prompt: str, use_weights: bool = True) -> list[tuple[str, float]]:
    """The prompt as ``(text, weight)`` segments, escapes resolved."""
    escaped = escape_parentheses(prompt)
    parsed = parse_weights(escaped) if use_weights else [(escaped, 1.0)]
    return [(unescape_parentheses(text), weight) for text, weight in parsed]


def split_embedding_words(segment: str) -> list[str]:
    """Split a segment before every ``embedding:`` that starts a word.

    ``"a cat embedding:style b"`` → ``["a cat ", "embedding:style b"]``; empty parts dropped.
    """
    pieces = _EMBEDDING_SPLIT.split(segment)
    words = pieces[:1] + [EMBEDDING_PREFIX + piece for piece in pieces[1:]]
    return [word for word in words if word]


def split_embedding_reference(reference: str) -> tuple[str, str]:
    """``"name rest of text"`` → ``("name", "rest of text")``.

    The name ends at whitespace, or before a ``<`` or ``[`` glued to it.
    """
    words = reference.split()
    if not words:
        return "", ""
    name, leftover = words[0], " ".join(words[1:])
    cut = re.search(r"[<\[]", name)
    if cut is not None:
        leftover = name[cut.start():] + (" " + leftover if leftover else "")
        name = name[:cut.start()]
    return name, leftover
