from django.core.management.base import BaseCommand

from core.processes import platform_children, supervise


class Command(BaseCommand):
    help = "Serve the platform: gunicorn, a Celery worker and Celery beat together; Ctrl-C stops all three."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--web-workers", type=int, default=2)

    def handle(self, *args, **options):
        children = platform_children(bind=options["bind"], web_workers=options["web_workers"])
        code = supervise(children, log=lambda line: self.stdout.write(line))
        if code:
            raise SystemExit(code)
