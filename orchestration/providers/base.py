from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class CompletionRequest:
    """One request to a model. ``messages`` is what a chat model reads; ``context`` carries the
    same facts as structured data for providers that compose rather than generate."""

    task: str
    messages: list[dict[str, str]]
    context: dict[str, Any] = field(default_factory=dict)
    max_tokens: int = 600
    temperature: float = 0.2


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    finish_reason: str = "stop"


class ProviderError(Exception):
    kind = "permanent"


class TransientProviderError(ProviderError):
    """Worth retrying: a timeout, a dropped connection, a 429 or a 5xx."""

    kind = "transient"


class PermanentProviderError(ProviderError):
    """Retrying will not help: bad credentials, an unknown model, a malformed answer."""

    kind = "permanent"


class ModelProvider(Protocol):
    name: str

    def complete(self, request: CompletionRequest) -> Completion: ...
