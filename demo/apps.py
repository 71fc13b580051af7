from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"

    def ready(self) -> None:
        from core.web import login_debug_hint_register
        from demo.seed import demo_login_hint

        # In debug mode only (core.web decides), the login pages show the demo regulator's authenticator.
        login_debug_hint_register(demo_login_hint)
