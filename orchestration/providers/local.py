"""The local provider: composes a reply from the retrieved articles, deterministically.

It needs no network and no key; the same ticket and articles always give the same reply."""

import re

from orchestration.providers.base import Completion, CompletionRequest, PermanentProviderError

_OPENERS = {
    "billing": "I've looked into the billing question you raised.",
    "refund": "I understand you'd like money back, and I'm sorry for the trouble.",
    "account_access": "Being locked out is stressful, so let's get you back in.",
    "bug": "Thanks for the detailed report; I'm sorry this isn't working as it should.",
    "outage": "I'm sorry for the disruption: I know you depend on Tallybook to work.",
    "how_to": "Happy to walk you through it.",
    "feature_request": "Thank you for the suggestion; ideas like this shape what we build.",
    "cancellation": "I'm sorry to hear you want to leave, and I'll make this straightforward.",
    "security": "Thank you for telling us; we take this seriously.",
}
_STEP = re.compile(r"^\s*\d+\.\s+(.*)$")
MAX_STEPS = 6


def _first_name(name: str) -> str:
    parts = name.strip().split()
    return parts[0] if parts else "there"


def _steps(body: str) -> list[str]:
    return [m.group(1).strip() for line in body.splitlines() if (m := _STEP.match(line))]


def compose_reply(context: dict) -> str:
    """The reply from the articles, in the house style the drafter version in use learned
    from people's edits (learning.house_style), if any."""
    from orchestration.learning.house_style import in_house_style

    stock = stock_reply(context)
    return in_house_style(context.get("house_edits") or (), stock)


def stock_reply(context: dict) -> str:
    category = context.get("category", "")
    articles = context.get("articles", [])
    lines = [f"Hi {_first_name(context.get('customer_name', ''))},", ""]
    lines.append(
        f'Thanks for writing to us about "{context.get("subject", "").strip()}". '
        + _OPENERS.get(category, "Thanks for getting in touch.")
    )
    lines.append("")
    if articles:
        main = articles[0]
        lines.append(main["summary"].strip())
        steps = _steps(main.get("body", ""))[:MAX_STEPS]
        if steps:
            lines.append("")
            lines.append("Here is what to do:")
            lines.extend(f"{i}. {step}" for i, step in enumerate(steps, start=1))
        lines.append("")
        lines.append(f'The full guide is in our help centre: "{main["title"]}" [{main["slug"]}].')
        for extra in articles[1:2]:
            lines.append(f'You may also find "{extra["title"]}" [{extra["slug"]}] useful.')
    else:
        lines.append(
            "I couldn't find a help article that answers this exactly, so a member of our "
            "team will follow up with you personally."
        )
    lines.append("")
    lines.append("If anything is still unclear, just reply to this email.")
    lines.append("")
    lines.append("Best regards,")
    lines.append("The Tallybook support team")
    return "\n".join(lines)


class LocalProvider:
    name = "local"
    model = "local-composer-1"

    def complete(self, request: CompletionRequest) -> Completion:
        if request.task != "draft_reply":
            raise PermanentProviderError(f"the local provider cannot do {request.task!r}")
        text = compose_reply(request.context)
        prompt_words = sum(len(m["content"].split()) for m in request.messages)
        return Completion(
            text=text,
            model=self.model,
            provider=self.name,
            input_tokens=prompt_words,
            output_tokens=len(text.split()),
        )
