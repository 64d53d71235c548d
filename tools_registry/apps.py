from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _install_defaults(sender: AppConfig, **kwargs: Any) -> None:
    """A fresh database (one that has never held a grant) starts with the support desk's
    tools and grants; after that, grants are an admin's to change."""
    from tools_registry.defaults import install_support_desk_grants
    from tools_registry.models import Grant

    if not Grant.objects.using(kwargs.get("using", "default")).exists():
        install_support_desk_grants()


class ToolsRegistryConfig(AppConfig):
    name = "tools_registry"
    verbose_name = "Tool registry"

    def ready(self) -> None:
        post_migrate.connect(_install_defaults, sender=self)
