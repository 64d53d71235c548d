"""The OpenAI-compatible provider, against a recorded exchange; never the network."""

import json
from pathlib import Path

import httpx
import pytest

from orchestration.providers import (
    CompletionRequest,
    PermanentProviderError,
    TransientProviderError,
)
from orchestration.providers.local import LocalProvider
from orchestration.providers.openai_compatible import OpenAICompatibleProvider

RECORDED = json.loads(
    (Path(__file__).parent.parent / "fixtures/openai_chat_completion.json").read_text()
)
REQUEST = CompletionRequest(
    task="draft_reply",
    messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "logo?"}],
)


def provider_answering(handler):
    return OpenAICompatibleProvider(
        base_url="https://models.internal.example/v1",
        api_key="sk-test",
        model="gpt-4o-mini",
        transport=httpx.MockTransport(handler),
    )


def test_it_sends_a_chat_completion_and_reads_the_recorded_answer():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["auth"] = request.headers["authorization"]
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json=RECORDED["response"])

    completion = provider_answering(handler).complete(REQUEST)
    assert seen["url"] == "https://models.internal.example/v1/chat/completions"
    assert seen["auth"] == "Bearer sk-test"
    for key, value in RECORDED["request"].items():
        assert seen["body"][key] == value
    assert seen["body"]["messages"] == REQUEST.messages
    assert completion.text.startswith("Hi Mia,")
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert (completion.input_tokens, completion.output_tokens) == (412, 41)


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limits_and_server_errors_are_transient(status):
    provider = provider_answering(lambda request: httpx.Response(status, text="busy"))
    with pytest.raises(TransientProviderError, match=str(status)):
        provider.complete(REQUEST)


def test_a_timeout_is_transient():
    def handler(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(TransientProviderError, match="unreachable"):
        provider_answering(handler).complete(REQUEST)


@pytest.mark.parametrize("status", [400, 401, 404])
def test_a_refused_request_is_permanent(status):
    provider = provider_answering(lambda request: httpx.Response(status, json={"error": "no"}))
    with pytest.raises(PermanentProviderError, match=str(status)):
        provider.complete(REQUEST)


def test_a_malformed_answer_is_permanent():
    provider = provider_answering(lambda request: httpx.Response(200, json={"choices": []}))
    with pytest.raises(PermanentProviderError, match="malformed"):
        provider.complete(REQUEST)


def test_the_local_provider_is_deterministic_and_quotes_the_answering_passage_whole():
    steps = "\n".join(f"{n}. Step {n} of the answer." for n in range(1, 10))
    request = CompletionRequest(
        task="draft_reply",
        messages=[{"role": "user", "content": "logo"}],
        context={
            "greeting_name": "Mia",
            "category": "how_to",
            "passages": [
                {
                    "ref": "invoice-branding#2",
                    "slug": "invoice-branding",
                    "title": "Brand your invoices",
                    "text": f"If you have no logo file yet:\n{steps}",
                }
            ],
        },
    )
    first = LocalProvider().complete(request)
    assert first == LocalProvider().complete(request)
    assert first.text.startswith("Hi Mia,\n\nHappy to walk you through it.")
    assert "9. Step 9 of the answer." in first.text, "no step of the answer is cut"
    assert "[invoice-branding#2]" in first.text


def test_the_local_provider_says_a_person_will_follow_up_when_nothing_answers():
    request = CompletionRequest(
        task="draft_reply", messages=[], context={"greeting_name": "there", "passages": []}
    )
    text = LocalProvider().complete(request).text
    assert text.startswith("Hi there,") and "member of our team will follow up" in text
