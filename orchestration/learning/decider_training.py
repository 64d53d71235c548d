"""The decider's starting model, trained honestly from the shipped tickets' resolutions.

Every training ticket is replayed through triage, research and the decider's features with
models that never saw it: the training split is cut into folds, and each fold is classified
and searched by a classifier, an answer model and a resolved history built from the other
folds only. Whether a person would have sent the draft unchanged is read from the ground
truth: the category was right and the draft's primary article is one that answers the
ticket (``answer_slugs``). So the starting model learns how often the agents are right on
tickets they have not seen, not on tickets they memorised.

The same replay is the demo's decision history: each ticket's real resolution stands in for
the operator's answer, and the decider's cross-fitted recommendation on it is evidence for
its category's autonomy."""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from sklearn.model_selection import StratifiedKFold

from orchestration import dataset
from orchestration.agents.answer_model import AnswerModel
from orchestration.agents.decider_model import DeciderModel, features
from orchestration.agents.instructions import detect
from orchestration.agents.retrieval import Corpus, query_text
from orchestration.agents.triage_model import TriageModel
from orchestration.learning.answers import wrong_to_auto_send

FOLDS = 5
SEED = 20261208


@dataclass(frozen=True)
class Replayed:
    ticket: dataset.LabelledTicket
    category: str  # as triage had it
    urgency: str
    primary: str  # the draft's primary article: retrieval's best
    features: dict[str, float]
    unchanged: bool  # by the ground truth
    score: float = 0.0  # the decider's estimate from a model that never saw this ticket
    instruction_hit: bool = False


def _folds(tickets: Sequence[dataset.LabelledTicket]) -> list[tuple[list[int], list[int]]]:
    splitter = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    labels = [t.category for t in tickets]
    return [(list(a), list(b)) for a, b in splitter.split(list(tickets), labels)]


def shipped_articles() -> list[dict]:
    return [{"id": i, **row} for i, row in enumerate(dataset.articles(), start=1)]


def _history(tickets: Sequence[dataset.LabelledTicket]) -> list[dict]:
    return [
        {
            "id": i,
            "external_id": t.external_id,
            "subject": t.subject,
            "body": t.body,
            "resolution": t.resolution,
            "answer_slugs": list(t.answer_slugs),
        }
        for i, t in enumerate(tickets, start=1)
    ]


@cache
def cross_fitted_replay() -> tuple[Replayed, ...]:
    """Every training ticket, replayed by agents trained without its fold."""
    train, _ = dataset.split()
    articles = shipped_articles()
    replayed: dict[int, Replayed] = {}
    for others, fold in _folds(train):
        seen = [train[i] for i in others]
        triage = TriageModel.train(
            [t.text for t in seen], [t.category for t in seen], [t.urgency for t in seen]
        )
        corpus = Corpus(
            articles=articles, history=_history(seen), answer_model=AnswerModel.train(seen)
        )
        for i in fold:
            replayed[i] = _replay(train[i], triage, corpus)
    rows = [replayed[i] for i in range(len(train))]
    return tuple(_cross_scored(rows))


def _replay(ticket: dataset.LabelledTicket, triage: TriageModel, corpus: Corpus) -> Replayed:
    prediction = triage.predict(ticket.text)
    top = sorted(prediction.category_scores.items(), key=lambda kv: kv[1], reverse=True)[:3]
    triage_out = {
        "category": prediction.category,
        "category_confidence": prediction.category_confidence,
        "alternatives": [{"category": c, "score": s} for c, s in top],
    }
    found = corpus.retrieve(query_text(ticket.subject, ticket.body), 3, None)
    research_out = {
        "articles": [
            {
                "slug": a.slug,
                "title": a.title,
                "score": a.score,
                "passage": {"ref": a.passage.ref, "text": a.passage.text},
            }
            for a in found.articles
        ],
        "signals": found.signals,
    }
    detection = detect(ticket.text)
    row = features(
        subject=ticket.subject,
        text=ticket.text,
        triage=triage_out,
        research=research_out,
        instruction_score=detection.score,
    )
    primary = found.articles[0].slug if found.articles else ""
    return Replayed(
        ticket=ticket,
        category=prediction.category,
        urgency=prediction.urgency,
        primary=primary,
        features=row,
        unchanged=not wrong_to_auto_send(
            category=prediction.category,
            true_category=ticket.category,
            primary_citation=primary,
            answer_slugs=ticket.answer_slugs,
        ),
        instruction_hit=detection.hit,
    )


def _cross_scored(rows: list[Replayed]) -> list[Replayed]:
    """Each row with the decider's estimate from a model trained on the other folds."""
    scored: dict[int, Replayed] = {}
    for others, fold in _folds([r.ticket for r in rows]):
        model = DeciderModel.train(
            [rows[i].features for i in others], [rows[i].unchanged for i in others]
        )
        for i in fold:
            r = rows[i]
            scored[i] = replace(r, score=model.estimate(r.features).score)
    return [scored[i] for i in range(len(rows))]


def starting_model() -> DeciderModel:
    rows = cross_fitted_replay()
    return DeciderModel.train([r.features for r in rows], [r.unchanged for r in rows])


def hard_rule_applies(row: Replayed, config: Any) -> bool:
    """Whether one of the decider's hard rules would send this replayed ticket to a person."""
    from orchestration.agents.decider import hard_rule_reasons

    return bool(
        hard_rule_reasons(
            category=row.category,
            urgency=row.urgency,
            ticket_text=row.ticket.text,
            instruction_hit=row.instruction_hit,
            citations=[row.primary] if row.primary else [],
            config=config,
        )
    )


def replay_metrics(rows: Sequence[Replayed]) -> dict[str, float]:
    """How the cross-fitted estimate did on the replay: its calibration and ranking."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    labels = [int(r.unchanged) for r in rows]
    scores = [r.score for r in rows]
    return {
        "examples": len(rows),
        "sent_unchanged_share": round(sum(labels) / len(labels), 4),
        "brier": round(float(brier_score_loss(labels, scores)), 4),
        "auc": round(float(roc_auc_score(labels, scores)), 4),
    }
