"""The local provider: composes a reply from the retrieved passages, deterministically.

It needs no network and no key; the same ticket and articles always give the same reply."""

from orchestration.providers.base import Completion, CompletionRequest, PermanentProviderError

# A natural first line per category: it acknowledges the kind of problem, never repeats the
# subject back (customers know what they wrote).
_OPENERS = {
    "billing": "Thanks for getting in touch about your billing.",
    "refund": "I understand you'd like money back, and I'm sorry for the trouble.",
    "account_access": "Being locked out is stressful, so let's get you back in.",
    "bug": "Thanks for the detailed report; I'm sorry this isn't working as it should.",
    "outage": "I'm sorry for the disruption: I know you depend on Tallybook to work.",
    "how_to": "Happy to walk you through it.",
    "feature_request": "Thank you for the suggestion; ideas like this shape what we build.",
    "cancellation": "I'm sorry to hear you want to leave, and I'll make this straightforward.",
    "security": "Thank you for telling us; we take this seriously.",
}
NO_ANSWER = (
    "I couldn't find a help article that answers this exactly, so a member of our team will "
    "follow up with you personally."
)


def compose_reply(context: dict) -> str:
    """The reply from the answering passages, in the house style the drafter version in use
    learned from people's edits (learning.house_style), if any."""
    from orchestration.learning.house_style import in_house_style

    stock = stock_reply(context)
    return in_house_style(context.get("house_edits") or (), stock)


def stock_reply(context: dict) -> str:
    """Greeting, a natural opening, then each answering passage whole (its steps are never
    cut: the part that answers is often the last one), each cited by its passage id."""
    category = context.get("category", "")
    passages = context.get("passages", [])
    name = context.get("greeting_name") or "there"
    lines = [f"Hi {name},", "", _OPENERS.get(category, "Thanks for getting in touch.")]
    if passages:
        for i, passage in enumerate(passages):
            lines.append("")
            if i > 0:
                lines.append("On your other question:")
            lines.append(passage["text"].strip())
        lines.append("")
        main = passages[0]
        lines.append(f'More in our help centre: "{main["title"]}" [{main["ref"]}].')
        for extra in passages[1:]:
            lines.append(f'And: "{extra["title"]}" [{extra["ref"]}].')
    else:
        lines.extend(["", NO_ANSWER])
    lines.extend(
        [
            "",
            "If anything is still unclear, just reply to this email.",
            "",
            "Best regards,",
            "The Tallybook support team",
        ]
    )
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
