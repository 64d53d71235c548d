"""Model providers behind one small interface: the local default and any OpenAI-compatible
chat-completions server (OpenAI, Azure, vLLM, Ollama, llama.cpp)."""

from django.conf import settings

from orchestration.providers.base import (
    Completion,
    CompletionRequest,
    ModelProvider,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from orchestration.providers.local import LocalProvider
from orchestration.providers.openai_compatible import OpenAICompatibleProvider

__all__ = [
    "Completion",
    "CompletionRequest",
    "ModelProvider",
    "PermanentProviderError",
    "ProviderError",
    "TransientProviderError",
    "get_provider",
]


def get_provider() -> ModelProvider:
    if settings.MODEL_PROVIDER == "openai":
        return OpenAICompatibleProvider(
            base_url=settings.OPENAI_BASE_URL,
            api_key=settings.OPENAI_API_KEY,
            model=settings.OPENAI_MODEL,
            timeout=settings.OPENAI_TIMEOUT_SECONDS,
        )
    return LocalProvider()
