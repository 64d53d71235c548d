"""The triage classifier: category and urgency from the ticket text, each with a calibrated
confidence. Plain scikit-learn; the database only stores the trained artifact."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from orchestration.agents import model_artifacts

FORMAT = "switchboard-triage-1"


@dataclass(frozen=True)
class Prediction:
    category: str
    category_confidence: float
    urgency: str
    urgency_confidence: float
    category_scores: dict[str, float]


def _features() -> TfidfVectorizer:
    # Words and word pairs seen in at least two tickets. Character n-grams scored a point
    # or two higher on the held-out split but cost most of the training time: retraining on
    # 10,000 decisions took 48 s with them and a logistic regression, under 5 s like this.
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, lowercase=True)


def _classifier(folds: int) -> CalibratedClassifierCV:
    # Temperature scaling fitted on cross-validation folds: the confidence the decider
    # compares with its thresholds must mean "how often this label is right".
    return CalibratedClassifierCV(LinearSVC(C=0.5), method="temperature", cv=folds, ensemble=False)


def _fit_head(matrix: Any, labels: list[str]) -> CalibratedClassifierCV:
    """One head on the labels seen at least twice (a label seen once can be neither
    learned nor calibrated), with as many folds as the rarest label allows, up to three."""
    counts = Counter(labels)
    kept = [i for i, label in enumerate(labels) if counts[label] >= 2]
    if len({labels[i] for i in kept}) < 2:
        raise ValueError("training needs at least two labels seen twice or more")
    folds = min(3, min(counts[labels[i]] for i in kept))
    return _classifier(folds).fit(matrix[kept], [labels[i] for i in kept])


class TriageModel:
    def __init__(self, category: Pipeline, urgency: Pipeline) -> None:
        self.category = category
        self.urgency = urgency

    @classmethod
    def train(
        cls, texts: Sequence[str], categories: Sequence[str], urgencies: Sequence[str]
    ) -> "TriageModel":
        """Both heads share one vocabulary, fitted once."""
        features = _features().fit(list(texts))
        matrix = features.transform(list(texts))
        category = _fit_head(matrix, list(categories))
        urgency = _fit_head(matrix, list(urgencies))
        return cls(
            Pipeline([("features", features), ("classifier", category)]),
            Pipeline([("features", features), ("classifier", urgency)]),
        )

    def predict(self, text: str) -> Prediction:
        return self.predict_many([text])[0]

    def predict_many(self, texts: Sequence[str]) -> list[Prediction]:
        category_probs = self.category.predict_proba(list(texts))
        urgency_probs = self.urgency.predict_proba(list(texts))
        category_labels = list(self.category.classes_)
        urgency_labels = list(self.urgency.classes_)
        predictions = []
        for c_row, u_row in zip(category_probs, urgency_probs, strict=True):
            c_best = int(c_row.argmax())
            u_best = int(u_row.argmax())
            predictions.append(
                Prediction(
                    category=category_labels[c_best],
                    category_confidence=round(float(c_row[c_best]), 4),
                    urgency=urgency_labels[u_best],
                    urgency_confidence=round(float(u_row[u_best]), 4),
                    category_scores={
                        label: round(float(p), 4)
                        for label, p in zip(category_labels, c_row, strict=True)
                    },
                )
            )
        return predictions

    def evaluate(
        self, texts: Sequence[str], categories: Sequence[str], urgencies: Sequence[str]
    ) -> dict[str, float]:
        predictions = self.predict_many(texts)
        predicted_categories = [p.category for p in predictions]
        predicted_urgencies = [p.urgency for p in predictions]
        return {
            "category_accuracy": round(accuracy_score(categories, predicted_categories), 4),
            "category_macro_f1": round(
                f1_score(categories, predicted_categories, average="macro"), 4
            ),
            "urgency_accuracy": round(accuracy_score(urgencies, predicted_urgencies), 4),
            "urgency_macro_f1": round(f1_score(urgencies, predicted_urgencies, average="macro"), 4),
            "examples": len(texts),
        }

    def dumps(self) -> bytes:
        return model_artifacts.dump(self, format=FORMAT)

    @classmethod
    def loads(cls, blob: bytes) -> "TriageModel":
        model: TriageModel = model_artifacts.load(
            blob, format=FORMAT, what="triage model", retrain="manage.py train_triage"
        )
        return model
