"""The grant screens' forms: what an admin types, read into the terms the grant services take.

The forms read the text (JSON, a date, a choice) and check each list with the constraint
language's own parser, so every mistake is shown at once; whether the terms make sense
together is the services' to say (``GrantError`` names the field)."""

import json
from typing import Any

from django import forms

from orchestration.agents.registry import AGENTS
from tools_registry.grants import GrantTerms
from tools_registry.models import Grant, Tool
from tools_registry.policy import OPERATORS, ConstraintError, parse_constraints

APPROVAL_CHOICES = [
    (Grant.Approval.NEVER, "Never: calls within the constraints go through"),
    (Grant.Approval.ALWAYS, "Always: a person approves every call"),
    (Grant.Approval.WHEN, "When: a person approves a call that meets every approval condition"),
]
DATETIME_LOCAL = "%Y-%m-%dT%H:%M"

# What each operator means, for the help beside the JSON boxes.
OPERATOR_HELP = [(op, meaning) for op, (meaning, _) in OPERATORS.items()]


class ToolChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Tool) -> str:  # type: ignore[override]
        return obj.name if obj.enabled else f"{obj.name} (switched off)"


class JsonListField(forms.CharField):
    """A JSON list typed into a textarea; an empty box is an empty list."""

    widget = forms.Textarea(attrs={"rows": 5, "spellcheck": "false", "class": "json"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, strip=False, **kwargs)

    def to_python(self, value: Any) -> list[Any]:
        text = super().to_python(value).strip()
        if not text:
            return []
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as problem:
            raise forms.ValidationError(
                f"This is not valid JSON: {problem.msg} (line {problem.lineno}, "
                f"column {problem.colno})."
            ) from None
        if not isinstance(parsed, list):
            raise forms.ValidationError(
                'Write a list: [{"path": …, "op": …, "value": …}, …], or [] for none.'
            )
        return parsed

    def prepare_value(self, value: Any) -> Any:
        # Stored terms come as lists; what the admin typed comes back as they typed it.
        if isinstance(value, list):
            return json.dumps(value, indent=2, ensure_ascii=False)
        return value


class GrantForm(forms.Form):
    """New grant, or (with ``grant``) the terms of an existing one: its agent and tool stay."""

    agent = forms.ChoiceField(error_messages={"required": "Choose the agent."})
    tool = ToolChoiceField(
        queryset=Tool.objects.order_by("name"),
        to_field_name="name",
        empty_label="Choose a tool",
        error_messages={"required": "Choose the tool.", "invalid_choice": "Choose a listed tool."},
    )
    constraints = JsonListField(
        label="Constraints on the arguments",
        help_text="Every one must hold, or the call is refused. [] for none.",
    )
    approval = forms.ChoiceField(
        label="Ask a person",
        choices=APPROVAL_CHOICES,
        widget=forms.RadioSelect,
        initial=Grant.Approval.NEVER,
        error_messages={"required": "Choose when a person approves."},
    )
    approval_conditions = JsonListField(
        label="Approval conditions",
        help_text="For “when”: a person approves a call when all of these hold.",
    )
    expires_at = forms.DateTimeField(
        label="Expires",
        required=False,
        input_formats=[DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
        help_text="Leave empty for no expiry.",
        error_messages={"invalid": "Enter a date and time."},
    )
    reason = forms.CharField(
        label="Why the agent needs this tool (kept in the audit trail)",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Say why the agent needs this tool."},
    )

    def __init__(self, *args: Any, grant: Grant | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grant = grant
        if grant is not None:
            del self.fields["agent"]
            del self.fields["tool"]
        else:
            self.fields["agent"].choices = [("", "Choose an agent")] + [(a, a) for a in AGENTS]

    def clean_constraints(self) -> list[Any]:
        return _parsed(self.cleaned_data["constraints"])

    def clean_approval_conditions(self) -> list[Any]:
        return _parsed(self.cleaned_data["approval_conditions"])

    @classmethod
    def for_grant(cls, grant: Grant) -> "GrantForm":
        return cls(
            grant=grant,
            initial={
                "constraints": grant.constraints,
                "approval": grant.approval,
                "approval_conditions": grant.approval_conditions,
                "expires_at": grant.expires_at,
                "reason": grant.reason,
            },
        )

    def chosen(self) -> tuple[str, Tool]:
        """The agent and tool the (valid) form is about."""
        if self.grant is not None:
            return self.grant.agent, self.grant.tool
        return self.cleaned_data["agent"], self.cleaned_data["tool"]

    def terms(self) -> GrantTerms:
        data = self.cleaned_data
        return GrantTerms(
            constraints=data["constraints"],
            approval=data["approval"],
            approval_conditions=data["approval_conditions"],
            expires_at=data["expires_at"],
            reason=data["reason"],
        )


def _parsed(raw: list[Any]) -> list[Any]:
    try:
        parse_constraints(raw)
    except ConstraintError as problem:
        raise forms.ValidationError(str(problem)) from None
    return raw


class RevokeForm(forms.Form):
    reason = forms.CharField(
        label="Why it is revoked (kept in the audit trail)",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Say why the grant is revoked."},
    )
