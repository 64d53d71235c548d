from django.conf import settings
from django.db import models


class McpServer(models.Model):
    """A Model Context Protocol server whose tools are registered here, reached over stdio
    (a command this host runs) or streamable HTTP."""

    class Transport(models.TextChoices):
        STDIO = "stdio"
        HTTP = "http"

    name = models.SlugField(max_length=50, unique=True)
    title = models.CharField(max_length=200, blank=True)
    transport = models.CharField(max_length=8, choices=Transport.choices)
    command = models.CharField(max_length=500, blank=True)
    args = models.JSONField(default=list, blank=True)
    url = models.URLField(max_length=500, blank=True)
    timeout_seconds = models.FloatField(default=30.0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.name


class Tool(models.Model):
    """A tool agents may be granted: its definition as its source describes it, and what an
    admin decides about it (risk, limits, the kill switch).

    ``definition_hash`` covers what the source says the tool is and does (name, description,
    schemas, hints); a grant is pinned to it, so a tool whose definition changes is no longer
    covered by grants made for the old one."""

    class Risk(models.TextChoices):
        READ = "read"
        WRITE = "write"
        IRREVERSIBLE = "irreversible"

    class Source(models.TextChoices):
        BUILTIN = "builtin"
        MCP = "mcp"

    name = models.CharField(max_length=150, unique=True)
    source = models.CharField(max_length=8, choices=Source.choices)
    server = models.ForeignKey(
        McpServer, null=True, blank=True, on_delete=models.PROTECT, related_name="tools"
    )
    # The tool's name on its MCP server (the registry's name is prefixed by the server's).
    remote_name = models.CharField(max_length=150, blank=True)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    input_schema = models.JSONField(default=dict)
    output_schema = models.JSONField(null=True, blank=True)
    # An MCP server's hints (readOnlyHint, destructiveHint, ...): shown, never trusted.
    annotations = models.JSONField(default=dict, blank=True)
    risk = models.CharField(max_length=16, choices=Risk.choices)
    idempotent = models.BooleanField(default=False)
    timeout_seconds = models.FloatField(default=10.0)
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    definition_hash = models.CharField(max_length=64)
    # Present on the server at the last refresh (MCP); a vanished tool cannot be called.
    available = models.BooleanField(default=True)
    definition_changed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
