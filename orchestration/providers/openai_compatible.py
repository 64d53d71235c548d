"""Any server that speaks the OpenAI chat-completions protocol."""

import httpx

from orchestration.providers.base import (
    Completion,
    CompletionRequest,
    PermanentProviderError,
    TransientProviderError,
)


class OpenAICompatibleProvider:
    name = "openai_compatible"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        timeout: float = 30,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model = model
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    def complete(self, request: CompletionRequest) -> Completion:
        body = {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        try:
            response = self._client.post("chat/completions", json=body)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise TransientProviderError(f"model server unreachable: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientProviderError(f"model server answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentProviderError(
                f"model server refused the request ({response.status_code}): {response.text[:300]}"
            )
        try:
            payload = response.json()
            choice = payload["choices"][0]
            text = choice["message"]["content"]
            usage = payload.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise PermanentProviderError(f"malformed answer from the model server: {exc}") from exc
        if not isinstance(text, str) or not text.strip():
            raise PermanentProviderError("the model returned an empty reply")
        return Completion(
            text=text.strip(),
            model=payload.get("model", self.model),
            provider=self.name,
            input_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason") or "stop",
        )
