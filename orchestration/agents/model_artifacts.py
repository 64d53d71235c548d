"""Trained scikit-learn models as the bytes a PolicyVersion stores, and back.

An artifact names its format and the scikit-learn that trained it; one of another format, or
from another scikit-learn (whose pickles need not load the same), is refused with a
ValueError that says how to retrain. Artifacts are written only by this code into this
project's own database, which is why unpickling them is acceptable."""

import io
import pickle
from typing import Any

import sklearn


def dump(model: Any, *, format: str) -> bytes:
    buffer = io.BytesIO()
    pickle.dump(
        {"format": format, "sklearn": sklearn.__version__, "model": model},
        buffer,
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    return buffer.getvalue()


def load(blob: bytes, *, format: str, what: str, retrain: str) -> Any:
    """The model in ``blob``; ``what`` names it and ``retrain`` is the command that makes a
    new one, for the refusal's message."""
    try:
        payload = pickle.loads(blob)  # noqa: S301
    except (pickle.UnpicklingError, EOFError, ValueError) as problem:
        raise ValueError(f"not a {what} artifact: {problem}") from None
    if not isinstance(payload, dict) or payload.get("format") != format:
        raise ValueError(f"not a {what} artifact")
    if payload["sklearn"] != sklearn.__version__:
        raise ValueError(
            f"the {what} was trained with scikit-learn {payload['sklearn']}, this is "
            f"{sklearn.__version__}; run `{retrain}` to retrain it"
        )
    return payload["model"]
