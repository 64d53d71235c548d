"""The desk's house style: the edits people make to drafts again and again, whatever the
ticket (a greeting line added, a sign-off replaced), learned from approved replies and
made to every new draft by the local provider while a drafter version holds them.

An edit is a block of lines a person replaced, deleted or added between the agent's draft
and the reply they sent. Only edits that recur, the same in several exemplars approved by
more than one person, are house style: a line about one customer (their refund, their
card, their name) is never made to another's draft, and one person alone cannot teach
every draft a line of theirs."""

import difflib
import json
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

# The same edit in this many exemplars, approved by this many people, is house style.
MIN_EXEMPLARS = 3
MIN_PEOPLE = 2
# Two lines this alike are one line a person changed (for this ticket), not new material.
_SAME_LINE = 0.6


@dataclass(frozen=True)
class Edit:
    old: tuple[str, ...]  # the lines replaced or deleted; empty for an insertion
    new: tuple[str, ...]
    # Where an insertion goes: lines from the start, or (negative) before the end.
    at: int | None = None

    @property
    def signature(self) -> str:
        return json.dumps([self.old, self.new, self.at])

    @classmethod
    def from_signature(cls, signature: str) -> "Edit":
        old, new, at = json.loads(signature)
        return cls(tuple(old), tuple(new), at)


def edits_of(before: str, after: str) -> list[Edit]:
    """The edits that turn ``before`` into ``after``, line by line. A line changed in
    place (alike before and after) is an edit of that one line."""
    old, new = before.split("\n"), after.split("\n")
    found: list[Edit] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        while i1 < i2 and j1 < j2 and _alike(old[i2 - 1], new[j2 - 1]):
            found.append(Edit((old[i2 - 1],), (new[j2 - 1],)))
            i2, j2 = i2 - 1, j2 - 1
        while i1 < i2 and j1 < j2 and _alike(old[i1], new[j1]):
            found.append(Edit((old[i1],), (new[j1],)))
            i1, j1 = i1 + 1, j1 + 1
        if i1 < i2:
            if any(line.strip() for line in old[i1:i2]):
                found.append(Edit(tuple(old[i1:i2]), tuple(new[j1:j2])))
        elif j1 < j2:
            at = i1 if i1 <= len(old) - i1 else -(len(old) - i1)
            found.append(Edit((), tuple(new[j1:j2]), at))
    return found


def apply_edits(edits: Iterable[Edit], draft: str) -> str:
    """``draft`` with each edit made where it fits: a replaced or deleted block wherever
    the draft has it word for word, an insertion at its place; an edit that does not fit,
    or overlaps one already made, is left out."""
    target = draft.split("\n")
    placed: list[tuple[int, int, tuple[str, ...]]] = []
    for edit in edits:
        if edit.old:
            start = _find(edit.old, target)
            if start is not None:
                placed.append((start, start + len(edit.old), edit.new))
        elif edit.at is not None:
            start = edit.at if edit.at >= 0 else len(target) + edit.at
            if 0 <= start <= len(target):
                placed.append((start, start, edit.new))
    result, taken = list(target), len(target) + 1
    for start, end, lines in sorted(placed, key=lambda p: (p[0], p[1]), reverse=True):
        if end > taken:
            continue
        result[start:end] = lines
        taken = start
    return "\n".join(result)


def in_house_style(house: Collection[str], draft: str) -> str:
    """``draft`` with the house-style edits (their signatures) made where they fit."""
    return apply_edits((Edit.from_signature(s) for s in sorted(house)), draft)


def house_edits(replies: Iterable[tuple[str, str, int]]) -> list[str]:
    """The signatures of the edits that recur in (draft, reply, person) triples: made in
    at least ``MIN_EXEMPLARS`` of them by at least ``MIN_PEOPLE`` people."""
    seen: dict[str, list[int]] = defaultdict(list)
    for draft, reply, person in replies:
        for signature in {e.signature for e in edits_of(draft, reply)}:
            seen[signature].append(person)
    return sorted(
        signature
        for signature, people in seen.items()
        if len(people) >= MIN_EXEMPLARS and len(set(people)) >= MIN_PEOPLE
    )


def _alike(a: str, b: str) -> bool:
    return bool(a.strip()) and difflib.SequenceMatcher(a=a, b=b).ratio() >= _SAME_LINE


def _find(block: tuple[str, ...], target: list[str]) -> int | None:
    for at in range(len(target) - len(block) + 1):
        if tuple(target[at : at + len(block)]) == block:
            return at
    return None
