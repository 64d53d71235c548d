from django.db import models


class Span(models.Model):
    """One trace record: an agent step, a model call, a retrieval, a policy decision or a human
    decision. Attribute names follow the OpenTelemetry GenAI conventions where one exists
    (``gen_ai.request.model``, ``gen_ai.usage.input_tokens``, ...)."""

    class Kind(models.TextChoices):
        AGENT = "agent"
        MODEL = "model"
        RETRIEVAL = "retrieval"
        TOOL = "tool"
        POLICY = "policy"
        HUMAN = "human"

    run = models.ForeignKey("orchestration.Run", on_delete=models.CASCADE, related_name="spans")
    step = models.ForeignKey(
        "orchestration.Step", null=True, blank=True, on_delete=models.CASCADE, related_name="spans"
    )
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=200)
    attributes = models.JSONField(default=dict)
    status = models.CharField(max_length=8, default="ok")
    started_at = models.DateTimeField()
    duration_ms = models.FloatField(default=0)

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"
