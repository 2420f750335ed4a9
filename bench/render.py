"""Markdown rendering cost: milliseconds per KB for prose and for the worst bodies known.

Run from the project root (see bench/README.md for what is measured and how):

    .venv/bin/python -m bench.render
    .venv/bin/python -m bench.render --size 10000 --rounds 9
    .venv/bin/python -m bench.render --comments

Each body is rendered the way saving a post (or, with ``--comments``, a
comment) renders it: ``portal.markup.render_post`` (``render_comment``), the
parser and the sanitiser together. A body the renderer refuses as too costly
is timed up to the refusal, which is what a save then costs. The table shows
the CPU milliseconds per KB (the median of ``--rounds``) and the ratio to
prose of the same size. The target: no body of the allowed size over about
3 times prose.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from collections.abc import Callable

from portal import markup
from portal.comments import constants as COMMENT
from portal.posts import constants as POST

TARGET = 3.0
WORDS = (
    "the a of to and in that it is was for on are as with his they at be this have from "
    "or one had by word but not what all were we when your can said there use an each which "
    "she do how their if will up other about out many then them these so some her would make "
    "like him into time has look two more write go see number no way could people my than "
    "first water been call who oil its now find long down day did get come made may part"
).split()


def words(size: int, seed: int = 1) -> str:
    """Paragraphs of plain sentences, without any Markdown at all."""
    return prose(size, seed, marked=0.0)


def prose(size: int, seed: int = 1, marked: float = 0.08) -> str:
    """Paragraphs of sentences, a word in twelve or so emphasised, linked or code.

    The baseline: what most of a post is, and what the first measurement of
    the problem called prose (its 100 KB took about a thirtieth of ``![``'s).
    """
    rng = random.Random(seed)
    paragraphs = []
    length = 0
    while length < size:
        sentences = []
        for _ in range(rng.randint(3, 7)):
            picked = [rng.choice(WORDS) for _ in range(rng.randint(8, 20))]
            for index, word in enumerate(picked):
                if rng.random() < marked:
                    picked[index] = rng.choice(
                        (f"*{word}*", f"**{word}**", f"`{word}`", f"[{word}](https://example.org/)")
                    )
            sentences.append(" ".join(picked).capitalize() + ".")
        paragraphs.append(" ".join(sentences))
        length += len(paragraphs[-1]) + 2
    return "\n\n".join(paragraphs)[:size]


def markdown(size: int, seed: int = 2) -> str:
    """A post that uses the features: headings, emphasis, links, code, lists, quotes, a table."""
    rng = random.Random(seed)
    blocks = []
    length = 0
    while length < size:
        words = [rng.choice(WORDS) for _ in range(rng.randint(30, 80))]
        for index in range(0, len(words), 9):
            kind = rng.randrange(5)
            word = words[index]
            words[index] = (
                f"*{word}*",
                f"**{word}**",
                f"`{word}()`",
                f"[{word}](https://example.org/{word})",
                word,
            )[kind]
        choice = rng.randrange(10)
        if choice == 0:
            block = "## " + " ".join(words[:6]).capitalize()
        elif choice == 1:
            block = "\n".join(f"- {' '.join(words[i : i + 6])}" for i in range(0, 30, 6))
        elif choice == 2:
            block = "> " + " ".join(words)
        elif choice == 3:
            block = (
                "```\n" + "\n".join(" ".join(words[i : i + 5]) for i in range(0, 25, 5)) + "\n```"
            )
        elif choice == 4:
            rows = [" | ".join(words[i : i + 3]) for i in range(0, 15, 3)]
            block = "\n".join([rows[0], "--- | --- | ---", *rows[1:]])
        else:
            block = " ".join(words).capitalize() + "."
        blocks.append(block)
        length += len(block) + 2
    return "\n\n".join(blocks)[:size]


def repeat(unit: str) -> Callable[[int], str]:
    return lambda size: (unit * (size // len(unit) + 1))[:size]


# The three, then the worst found by rendering every one- and two-character
# unit and a few hundred longer ones, repeated to the size (see bench/README.md).
BODIES: dict[str, Callable[[int], str]] = {
    "prose": prose,
    "plain sentences, no Markdown": words,
    "Markdown post": markdown,
    "`![` repeated": repeat("!["),
    "`[` repeated": repeat("["),
    "`a\\n` repeated": repeat("a\n"),
    "`[\\n!` repeated": repeat("[\n!"),
    "`_![` repeated": repeat("_!["),
    "`[*!` repeated": repeat("[*!"),
    "`[a](` repeated": repeat("[a]("),
    "`- a\\n` repeated": repeat("- a\n"),
    "`# a\\n` repeated": repeat("# a\n"),
    "`\\n&` repeated": repeat("\n&"),
    "`*a\\n` repeated": repeat("*a\n"),
    "`_a_ ` repeated": repeat("_a_ "),
    "`<a@b.c> ` repeated": repeat("<a@b.c> "),
    "`<http://a.b> ` repeated": repeat("<http://a.b> "),
    "`[a]: /u\\n` repeated": repeat("[a]: /u\n"),
    "`---\\n` repeated": repeat("---\n"),
    "``(.` `` repeated": repeat("(.`"),
    "`` `1 `` repeated": repeat("`1"),
    "`[` then `]`, nested": lambda size: "[" * (size // 2) + "]" * (size - size // 2),
    "table of one-letter cells": lambda size: (
        "|a" * 50 + "|\n" + "|-" * 50 + "|\n" + repeat("|a" * 50 + "|\n")(size)
    )[:size],
}


def cost(render: Callable[[str], str], body: str, rounds: int) -> tuple[float, str]:
    """CPU seconds to render ``body`` (median of ``rounds``), and what came of it."""
    timings = []
    outcome = "rendered"
    for _ in range(rounds):
        # Saving renders once (validating it first reuses the result): clear
        # that memo so that every round renders.
        render.cache_clear()  # type: ignore[attr-defined]
        started = time.process_time()
        try:
            render(body)
        except markup.MarkupTooCostly:
            outcome = "refused"
        timings.append(time.process_time() - started)
    return statistics.median(timings), outcome


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, help="characters per body (default: the maximum)")
    parser.add_argument("--rounds", type=int, default=5, help="renders per body (median)")
    parser.add_argument("--comments", action="store_true", help="render as comments")
    options = parser.parse_args(argv)
    render = markup.render_comment if options.comments else markup.render_post
    size = options.size or (COMMENT.BODY_MAX_LENGTH if options.comments else POST.BODY_MAX_LENGTH)

    results = {name: cost(render, make(size), options.rounds) for name, make in BODIES.items()}
    base = results["prose"][0]
    print(f"\n{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"{'comments' if options.comments else 'posts'}, {size:,} characters a body\n")
    print("| body | ms | ms per KB | ratio to prose | outcome |")
    print("|---|---|---|---|---|")
    worst = 0.0
    for name, (seconds, outcome) in results.items():
        ratio = seconds / base
        worst = max(worst, ratio)
        print(
            f"| {name} | {seconds * 1000:.1f} | {seconds * 1000 / (size / 1000):.2f} | "
            f"{ratio:.1f} | {outcome} |"
        )
    verdict = "met" if worst <= TARGET else "missed"
    print(f"\nworst ratio {worst:.1f}: target <= {TARGET:g} {verdict}")


if __name__ == "__main__":
    main()
