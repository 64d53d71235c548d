"""The drafter's exemplars: approved replies it follows for similar tickets.

A person's approved reply is evidence of what a good answer to that kind of ticket looks
like; an edited one more so (they put work into it). The learner keeps the best of them per
category; the drafter picks the one whose ticket is most like the one at hand, if any is
like it enough, and hands it to the model provider as an example."""

import difflib
import math
import re
from collections import Counter
from dataclasses import dataclass

from orchestration.learning.active import exemplar_ids
from orchestration.models import Exemplar

# Edited replies weigh this much against replies approved as drafted.
EDITED_WEIGHT = 2.0
# Exemplars a drafter version keeps per category, the heaviest and newest first.
PER_CATEGORY = 40
# How alike (cosine of word counts) a ticket must be to an exemplar's for it to be followed.
MIN_SIMILARITY = 0.35

_WORD = re.compile(r"[a-z0-9]{3,}")


@dataclass(frozen=True)
class Match:
    exemplar_id: int
    # The agent's draft the person approved or edited, and the reply they sent.
    draft: str
    reply: str
    ticket_subject: str
    similarity: float


def words(text: str) -> Counter[str]:
    return Counter(_WORD.findall(text.lower()))


def cosine(a: Counter[str], b: Counter[str]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(count * b[word] for word, count in a.items() if word in b)
    norms = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norms


def closest(category: str, ticket_text: str) -> Match | None:
    """The exemplar in use most like this ticket, if one is alike enough."""
    ids = exemplar_ids()
    if not ids or not category:
        return None
    rows = Exemplar.objects.filter(
        pk__in=ids, category=category, retired_at__isnull=True
    ).values_list("pk", "ticket_text", "draft", "reply", "weight")
    ticket = words(ticket_text)
    best: tuple[float, float, int, str, str, str] | None = None
    for pk, text, draft, reply, weight in rows:
        score = cosine(ticket, words(text))
        if score >= MIN_SIMILARITY and (best is None or (score, weight) > best[:2]):
            best = (score, weight, pk, draft, reply, text.split("\n", 1)[0])
    if best is None:
        return None
    score, _, pk, draft, reply, subject = best
    return Match(pk, draft, reply, subject, round(score, 4))


# Two lines this alike are one line a person changed (for this ticket), not new material.
_SAME_LINE = 0.6


def carry_edits(before: str, after: str, draft: str) -> str:
    """``draft`` with the edits a person made to another draft (``before`` to ``after``)
    made to it too, where they fit: a block of lines they replaced or deleted is replaced
    wherever ``draft`` has it word for word; lines they added go in at the same place,
    counted from the start or from the end, whichever is nearer. Lines they changed that
    were about the other ticket (its subject, its customer) are not found and not carried:
    what carries over is the desk's house style, its standard openings and sign-offs."""
    old, new, target = before.split("\n"), after.split("\n"), draft.split("\n")
    edits: list[tuple[int, int, list[str]]] = []  # (start, end) in target -> lines
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        # Lines changed in place at either end of the block belong to that ticket.
        while i1 < i2 and j1 < j2 and _alike(old[i2 - 1], new[j2 - 1]):
            edits.extend(_in_place(old[i2 - 1], new[j2 - 1], target))
            i2, j2 = i2 - 1, j2 - 1
        while i1 < i2 and j1 < j2 and _alike(old[i1], new[j1]):
            edits.extend(_in_place(old[i1], new[j1], target))
            i1, j1 = i1 + 1, j1 + 1
        if i1 < i2:
            at = _find(old[i1:i2], target) if any(x.strip() for x in old[i1:i2]) else None
            if at is not None:
                edits.append((at, at + i2 - i1, new[j1:j2]))
        elif j1 < j2:
            at = i1 if i1 <= len(old) - i1 else len(target) - (len(old) - i1)
            if 0 <= at <= len(target):
                edits.append((at, at, new[j1:j2]))
    result, taken = list(target), len(target) + 1
    for start, end, lines in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        if end > taken:  # overlaps an edit already made
            continue
        result[start:end] = lines
        taken = start
    return "\n".join(result)


def _alike(a: str, b: str) -> bool:
    return bool(a.strip()) and difflib.SequenceMatcher(a=a, b=b).ratio() >= _SAME_LINE


def _in_place(old_line: str, new_line: str, target: list[str]) -> list[tuple[int, int, list[str]]]:
    at = _find([old_line], target)
    return [] if at is None else [(at, at + 1, [new_line])]


def _find(block: list[str], target: list[str]) -> int | None:
    for at in range(len(target) - len(block) + 1):
        if target[at : at + len(block)] == block:
            return at
    return None


def select(candidates: list[tuple[int, str, float]]) -> list[int]:
    """The exemplars a drafter version keeps: per category the ``PER_CATEGORY`` heaviest,
    newest first among equals. ``candidates`` are (id, category, weight), oldest first."""
    by_category: dict[str, list[tuple[float, int]]] = {}
    for pk, category, weight in candidates:
        by_category.setdefault(category, []).append((weight, pk))
    kept: list[int] = []
    for rows in by_category.values():
        rows.sort(reverse=True)
        kept.extend(pk for _, pk in rows[:PER_CATEGORY])
    return sorted(kept)
