"""The shipped support-desk data: knowledge-base articles and labelled tickets.

The tickets are split once, deterministically and stratified by category, into a training
part (80%) and a held-out test part (20%) that no model ever trains on. A second, harder
test split (``hard_test``) was written apart from the training tickets, in other customers'
voices (typos, several questions at once, forwarded threads, non-native English, other
languages, questions the help centre does not cover, near-misses where a keyword-matching
article is the wrong one, instructions to the agents); nothing ever trains on it either."""

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sklearn.model_selection import train_test_split

DATA_DIR = Path(__file__).resolve().parent / "data"
TICKETS_FILE = DATA_DIR / "tickets.jsonl"
ARTICLES_FILE = DATA_DIR / "knowledge_base.jsonl"
HARD_TEST_FILE = DATA_DIR / "tickets_hard.jsonl"
# The instruction detector's held-out set, written apart from its training set.
INSTRUCTIONS_TEST_FILE = DATA_DIR / "instructions_test.jsonl"
SPLIT_SEED = 20261121
TEST_SHARE = 0.2


@dataclass(frozen=True)
class LabelledTicket:
    external_id: str
    subject: str
    body: str
    category: str
    urgency: str
    customer_name: str
    customer_email: str
    resolution: str
    # The help articles that answer it, most-answering first; empty when none does.
    answer_slugs: tuple[str, ...] = ()
    # The hard split says how each ticket is hard, and whether it instructs the agents.
    voice: str = ""
    instruction: bool = False

    @property
    def text(self) -> str:
        return f"{self.subject}\n{self.body}"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _labelled(row: dict[str, Any]) -> LabelledTicket:
    return LabelledTicket(
        external_id=row["external_id"],
        subject=row["subject"],
        body=row["body"],
        category=row["category"],
        urgency=row["urgency"],
        customer_name=row.get("customer_name", ""),
        customer_email=row["customer_email"],
        resolution=row.get("resolution", ""),
        answer_slugs=tuple(row.get("answer_slugs", ())),
        voice=row.get("voice", ""),
        instruction=bool(row.get("instruction", False)),
    )


@cache
def labelled_tickets() -> tuple[LabelledTicket, ...]:
    return tuple(_labelled(row) for row in read_jsonl(TICKETS_FILE))


@cache
def hard_test() -> tuple[LabelledTicket, ...]:
    """The harder test split, written apart from the training tickets; never trained on."""
    return tuple(_labelled(row) for row in read_jsonl(HARD_TEST_FILE))


def test_splits() -> dict[str, tuple[LabelledTicket, ...]]:
    """Every split figures are reported on, by name."""
    return {"test": split()[1], "hard": hard_test()}


@cache
def split() -> tuple[tuple[LabelledTicket, ...], tuple[LabelledTicket, ...]]:
    """(train, test), the same on every machine."""
    tickets = list(labelled_tickets())
    train, test = train_test_split(
        tickets,
        test_size=TEST_SHARE,
        random_state=SPLIT_SEED,
        stratify=[t.category for t in tickets],
    )
    return tuple(train), tuple(test)


def dataset_fingerprint() -> str:
    return hashlib.sha256(TICKETS_FILE.read_bytes()).hexdigest()[:16]


def articles() -> list[dict[str, Any]]:
    return read_jsonl(ARTICLES_FILE)
