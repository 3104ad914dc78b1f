"""Short text prompts about a digit, written from its label and measured attributes.

A prompt names the digit (``7`` or ``seven``) and some of its attribute categories
(:mod:`genlab.data.attributes`), each through one of several synonyms, in one of several
sentence shapes, so that a model must read the words rather than a template id::

    a thick 7 leaning right
    seven, bold, tilted to the right
    the digit 3 with thin strokes, upright
    a small skinny 4 shifted left

Which attributes are named, which synonyms and which shape are drawn from a stream seeded by
``(seed, image index, variant)``: the same image gets the same prompt for the same seed and
variant, and ``variant = 0, 1, 2, ...`` gives several prompts per image. Each of thickness,
slant and size is named with probability 1/2 (position only when the digit is off centre);
``force`` names attributes that must appear (the held-out combinations do).

:func:`parse_prompt` reads the label and categories back from any text made of these words;
:func:`prompt_vocabulary` lists every word a prompt can hold.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence

import numpy as np

from genlab.errors import DataError

__all__ = ["DIGIT_NAMES", "SYNONYMS", "parse_prompt", "prompt_vocabulary", "prompts_for",
           "split_words", "write_prompt"]

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

#: Words and phrases for each category. Single words can stand before the digit ("a bold 7");
#: longer phrases follow it ("7 tilted to the right").
SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "thickness": {
        "thin": ("thin", "skinny", "light", "fine"),
        "medium": ("medium", "regular"),
        "thick": ("thick", "bold", "heavy", "fat"),
    },
    "slant": {
        "left": ("leaning left", "tilted to the left", "slanted left", "slanting to the left"),
        "upright": ("upright", "straight", "standing straight"),
        "right": ("leaning right", "tilted to the right", "slanted right",
                  "slanting to the right"),
    },
    "size": {
        "small": ("small", "little", "tiny"),
        "large": ("large", "big", "wide"),
    },
    "position": {
        "left": ("shifted left", "off to the left", "near the left edge"),
        "right": ("shifted right", "off to the right", "near the right edge"),
    },
}

# words of the sentence shapes themselves
_FILLER = ("a", "an", "the", "digit", "number", "with", "strokes", "and", ",")
_SHAPES = ("noun", "list", "named", "strokes")
_MENTION_PROBABILITY = 0.5
_WORD = re.compile(r"[a-z]+|[0-9]|,|\S")


def split_words(text: str) -> list[str]:
    """Lower-case words of ``text``: letter runs, single digits and commas are words.

    Example:
        >>> split_words("Seven, BOLD, tilted to the right")
        ['seven', ',', 'bold', ',', 'tilted', 'to', 'the', 'right']
    """
    return _WORD.findall(text.lower())


def prompt_vocabulary() -> list[str]:
    """Every word a generated prompt can hold, sorted (the text tokenizer's vocabulary)."""
    words = set(_FILLER) | set(DIGIT_NAMES) | {str(k) for k in range(10)}
    for categories in SYNONYMS.values():
        for phrases in categories.values():
            for phrase in phrases:
                words.update(split_words(phrase))
    return sorted(words)


def _article(word: str) -> str:
    return "an" if word in ("8", "eight", "upright") else "a"


def _rng(seed: int, index: int, variant: int) -> np.random.Generator:
    key = (zlib.crc32(b"prompt"), int(index), int(variant))
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=key))


def write_prompt(label: int, categories: dict[str, str], *, seed: int = 0, index: int = 0,
                 variant: int = 0, force: Iterable[str] = ()) -> str:
    """One prompt about a digit.

    Arguments:
        label: The digit, 0..9.
        categories: Attribute name -> category name (e.g. ``{"thickness": "thick"}``); a
            ``"centred"`` or ``"medium"``-free position is simply never named.
        seed: Seed of the prompt stream.
        index: The image's index (digits: position in the whole data set), so that each image
            has its own stream.
        variant: Which of the image's prompts, 0, 1, 2, ...
        force: Attributes that must be named.

    Returns:
        The prompt, lower case, words separated by single spaces, commas attached.

    Example:
        >>> p = write_prompt(7, {"thickness": "thick", "slant": "right"}, force=["slant"])
        >>> parse_prompt(p)["slant"]
        'right'
    """
    rng = _rng(seed, index, variant)
    force = set(force)
    named = []  # phrases, in attribute order
    for attribute in ("thickness", "size", "slant", "position"):
        category = categories.get(attribute)
        choices = SYNONYMS[attribute].get(category, ()) if category else ()
        draw = rng.random()  # always drawn, so one attribute's presence never shifts another's
        pick = rng.integers(len(choices)) if choices else 0
        if choices and (attribute in force or draw < _MENTION_PROBABILITY):
            named.append(choices[pick])
    digit = DIGIT_NAMES[label] if rng.random() < 0.5 else str(label)
    shape = _SHAPES[rng.integers(len(_SHAPES))]
    single = [p for p in named if " " not in p]
    multi = [p for p in named if " " in p]
    if shape == "list" and named:  # seven, bold, tilted to the right
        return ", ".join([digit, *named])
    if shape == "named":  # the digit 3, thin, upright
        head = f"the {'digit' if rng.random() < 0.5 else 'number'} {digit}"
        return ", ".join([head, *named])
    if shape == "strokes" and categories.get("thickness") in SYNONYMS["thickness"] \
            and any(p in SYNONYMS["thickness"][categories["thickness"]] for p in single):
        # a 3 with thin strokes, upright
        stroke = next(p for p in single if p in SYNONYMS["thickness"][categories["thickness"]])
        rest = [p for p in named if p != stroke]
        head = f"{_article(digit)} {digit} with {stroke} strokes"
        return ", ".join([head, *rest])
    # a thick small 7 leaning right and shifted left
    words = [*single, digit]
    text = f"{_article(words[0])} {' '.join(words)}"
    return f"{text} {' and '.join(multi)}" if multi else text


def _phrase_table() -> dict[tuple[str, ...], tuple[str, str]]:
    table: dict[tuple[str, ...], tuple[str, str]] = {}
    for attribute, categories in SYNONYMS.items():
        for category, phrases in categories.items():
            for phrase in phrases:
                table[tuple(split_words(phrase))] = (attribute, category)
    for k, name in enumerate(DIGIT_NAMES):
        table[(name,)] = table[(str(k),)] = ("label", str(k))
    return table


_TABLE = _phrase_table()
_LONGEST = max(len(key) for key in _TABLE)


def parse_prompt(text: str) -> dict[str, str]:
    """The label and attribute categories a prompt names.

    Phrases are matched longest first ("tilted to the left" before "left"); other words are
    ignored (check words with the tokenizer).

    Arguments:
        text: A prompt.

    Returns:
        ``{"label": "7", "slant": "right", ...}`` with only the named keys.

    Raises:
        DataError: two different values named for one key ("a thin thick 7").

    Example:
        >>> parse_prompt("a thin upright 3")
        {'thickness': 'thin', 'slant': 'upright', 'label': '3'}
    """
    words = [w for w in split_words(text) if w != ","]
    found: dict[str, str] = {}
    i = 0
    while i < len(words):
        for length in range(min(_LONGEST, len(words) - i), 0, -1):
            match = _TABLE.get(tuple(words[i:i + length]))
            if match is not None:
                key, value = match
                if found.get(key, value) != value:
                    raise DataError(f"Expected at most one {key} in the prompt, but found "
                                    f"{found[key]!r} and {value!r} in {text!r}.")
                found[key] = value
                i += length
                break
        else:
            i += 1
    return found


def prompts_for(labels: Sequence[int], categories: Sequence[dict[str, str]],
                indices: Sequence[int], *, seed: int, variant: int = 0,
                force: Sequence[Iterable[str]] | None = None) -> list[str]:
    """:func:`write_prompt` for many images (one prompt each, lists of equal length)."""
    force = force if force is not None else [()] * len(labels)
    return [write_prompt(int(k), c, seed=seed, index=int(i), variant=variant, force=f)
            for k, c, i, f in zip(labels, categories, indices, force, strict=True)]
