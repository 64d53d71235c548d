"""The drafter's exemplars: approved replies it follows for similar tickets.

A person's approved reply is evidence of what a good answer to that kind of ticket looks
like; an edited one more so (they put work into it). The learner keeps the best of them per
category; the drafter picks the one whose ticket is most like the one at hand, if any is
like it enough, and hands it to the model provider as an example."""

import math
import re
from collections import Counter
from dataclasses import dataclass

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


def closest(ids: frozenset[int] | None, category: str, ticket_text: str) -> Match | None:
    """Of the exemplars ``ids`` (a drafter version's), the one most like this ticket, if one
    is alike enough."""
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
