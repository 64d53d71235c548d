"""The decider's estimate that a person would send the draft unchanged.

Confidence in the *category* says little about whether the *reply* answers what was asked,
so the estimate reads the evidence for the answer as well: how sure and how clear triage
was, how strong and how clear the retrieved answer is and whether similar tickets needed a
person, whether the cited passage covers the subject's terms, how many questions the ticket
asks, and the instruction detector's score. A logistic regression over these, calibrated,
trained first from the shipped tickets' resolutions (learning.decider_training) and later
from people's decisions (sent unchanged, or edited, rejected, escalated)."""

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from orchestration.agents import model_artifacts
from orchestration.agents.retrieval import query_terms
from orchestration.models.taxonomy import Category

FORMAT = "switchboard-decider-2"
NUMERIC = (
    "category_confidence",
    "category_margin",
    "article_score",
    "article_margin",
    "answer_model_top",
    "unanswered",
    "precedents_unanswered",
    "bm25_top",
    "character_top",
    "subject_coverage",
    "questions",
    "instruction_score",
    "length",
)
FEATURES = NUMERIC + tuple(f"category={c}" for c in Category.values)
LABELS = {
    "category_confidence": "triage's confidence",
    "category_margin": "triage's margin over the runner-up",
    "article_score": "the answer's retrieval score",
    "article_margin": "the answer's margin over the next article",
    "answer_model_top": "how often this article answered tickets like it",
    "unanswered": "the chance that no article answers it",
    "precedents_unanswered": "similar tickets no article answered",
    "bm25_top": "word match of the best passage",
    "character_top": "spelling-tolerant match of the best passage",
    "subject_coverage": "the subject's terms found in the cited passage",
    "questions": "questions asked",
    "instruction_score": "instructions to the agents",
    "length": "length of the ticket",
}
_QUESTION_START = re.compile(
    r"(?:^|[.!?\n]\s*)(?:how|what|why|when|where|which|who|can|could|is|are|do|does|will|would)\b",
    re.I,
)


def question_count(text: str) -> int:
    """A rough count of the questions a ticket asks: question marks, or sentences that
    start like a question when the customer left the marks out."""
    return max(text.count("?"), len(_QUESTION_START.findall(text)))


def features(
    *,
    subject: str,
    text: str,
    triage: Mapping[str, Any],
    research: Mapping[str, Any],
    instruction_score: float,
) -> dict[str, float]:
    """The decider's features for one ticket, from the earlier agents' outputs."""
    alternatives = [a.get("score", 0.0) for a in triage.get("alternatives", [])]
    articles = research.get("articles", [])
    signals = research.get("signals", {})
    top = articles[0] if articles else None
    covered = 0.0
    subject_terms = set(query_terms(subject))
    if top is not None and subject_terms:
        passage = (top.get("passage") or {}).get("text", "")  # older runs stored none
        passage_terms = set(query_terms(f"{top.get('title', '')}\n{passage}"))
        covered = len(subject_terms & passage_terms) / len(subject_terms)
    row = {
        "category_confidence": float(triage.get("category_confidence", 0.0)),
        "category_margin": (alternatives[0] - alternatives[1]) if len(alternatives) > 1 else 1.0,
        "article_score": float(top["score"]) if top else 0.0,
        "article_margin": float(signals.get("margin", 0.0)),
        "answer_model_top": float(signals.get("answer_model_top", 0.0)),
        "unanswered": float(signals.get("unanswered", 1.0)),
        "precedents_unanswered": float(signals.get("precedents_unanswered", 1.0)),
        "bm25_top": math.log1p(float(signals.get("bm25_top", 0.0))),
        "character_top": float(signals.get("character_top", 0.0)),
        "subject_coverage": round(covered, 4),
        "questions": float(min(question_count(text), 5)),
        "instruction_score": float(instruction_score),
        "length": math.log1p(len(text)),
    }
    category = triage.get("category", "")
    for c in Category.values:
        row[f"category={c}"] = 1.0 if c == category else 0.0
    return row


@dataclass(frozen=True)
class Estimate:
    score: float  # the chance a person sends the draft unchanged
    # The features that moved the estimate most, with their push (log-odds), strongest first.
    why: list[tuple[str, float]]


class DeciderModel:
    def __init__(self, pipeline: Pipeline, explainer: Pipeline) -> None:
        self.pipeline = pipeline
        # An uncalibrated twin whose coefficients say which features pushed a score.
        self.explainer = explainer

    @classmethod
    def train(
        cls, rows: Sequence[Mapping[str, float]], unchanged: Sequence[bool]
    ) -> "DeciderModel":
        matrix = _matrix(rows)
        labels = np.array([1 if u else 0 for u in unchanged])
        if len(set(labels)) < 2:
            raise ValueError("training the decider needs drafts sent unchanged and drafts not")
        folds = int(min(5, np.bincount(labels).min()))
        calibrated = Pipeline(
            [
                ("scale", StandardScaler()),
                (
                    "classifier",
                    CalibratedClassifierCV(
                        LogisticRegression(C=0.5, max_iter=2000), method="sigmoid", cv=max(folds, 2)
                    ),
                ),
            ]
        )
        explainer = Pipeline(
            [("scale", StandardScaler()), ("classifier", LogisticRegression(C=0.5, max_iter=2000))]
        )
        return cls(calibrated.fit(matrix, labels), explainer.fit(matrix, labels))

    def estimate(self, row: Mapping[str, float]) -> Estimate:
        matrix = _matrix([row])
        score = float(self.pipeline.predict_proba(matrix)[0][1])
        scaled = self.explainer.named_steps["scale"].transform(matrix)[0]
        weights = self.explainer.named_steps["classifier"].coef_[0]
        pushes = [
            (name, round(float(w * x), 3))
            for name, w, x in zip(FEATURES, weights, scaled, strict=True)
            if name in LABELS
        ]
        pushes.sort(key=lambda p: -abs(p[1]))
        return Estimate(round(score, 4), pushes[:4])

    def dumps(self) -> bytes:
        return model_artifacts.dump(self, format=FORMAT)

    @classmethod
    def loads(cls, blob: bytes) -> "DeciderModel":
        model: DeciderModel = model_artifacts.load(
            blob, format=FORMAT, what="decider model", retrain="manage.py train_decider"
        )
        return model


def _matrix(rows: Sequence[Mapping[str, float]]) -> np.ndarray:
    return np.array([[float(row.get(name, 0.0)) for name in FEATURES] for row in rows])


def explain(why: Sequence[tuple[str, float]]) -> list[str]:
    """The pushes as sentences for the task page."""
    return [
        f"{LABELS.get(name, name)} {'raised' if push > 0 else 'lowered'} it"
        for name, push in why
        if abs(push) >= 0.05
    ]
