from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import checks  # noqa: F401 (registers the rules profiles' check)
        from core.metrics import core_metrics_register
        from core.schema import name_nested_serializers

        name_nested_serializers()
        core_metrics_register()
