"""Input and output shapes of the machine API. The import command validates with these too."""

from typing import Any

from rest_framework import serializers

from orchestration.models.taxonomy import Category, Urgency
from orchestration.services.tickets import NewTicket


class StrictString(serializers.Field):
    """A string, and only a string: 42 or true is a type error, not a subject or an email."""

    default_error_messages = {"type": "Must be a string, not {kind}."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("type", kind=type(data).__name__ if data is not None else "null")
        value: str = super().to_internal_value(data)
        return value


class StrictCharField(StrictString, serializers.CharField):
    pass


class StrictEmailField(StrictString, serializers.EmailField):
    pass


class StrictChoiceField(StrictString, serializers.ChoiceField):
    pass


class TicketInput(serializers.Serializer):
    subject = StrictCharField(max_length=200)
    body = StrictCharField(max_length=20000)
    customer_email = StrictEmailField(max_length=254)
    customer_name = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    external_id = StrictCharField(max_length=100, required=False, allow_null=True, default=None)
    channel = StrictCharField(max_length=32, required=False, default="api")
    category = StrictChoiceField(choices=Category.choices, required=False)
    urgency = StrictChoiceField(choices=Urgency.choices, required=False)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)

    def to_new_ticket(self) -> NewTicket:
        data = self.validated_data
        return NewTicket(
            subject=data["subject"],
            body=data["body"],
            customer_email=data["customer_email"],
            customer_name=data.get("customer_name", ""),
            external_id=data.get("external_id"),
            channel=data.get("channel", "api"),
            known_category=data.get("category", ""),
            known_urgency=data.get("urgency", ""),
        )


class TicketAccepted(serializers.Serializer):
    ticket_id = serializers.IntegerField()
    run_id = serializers.IntegerField()
    run_url = serializers.CharField()


class RunStatus(serializers.Serializer):
    run_id = serializers.IntegerField(source="pk")
    ticket_id = serializers.IntegerField()
    status = serializers.CharField()
    outcome = serializers.CharField()
    step_count = serializers.IntegerField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
