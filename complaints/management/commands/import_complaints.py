from django.core.management.base import BaseCommand, CommandError

from complaints.errors import ComplaintImportFailed
from complaints.services import complaints_import_csv


class Command(BaseCommand):
    help = (
        "Import the 12345 hotline's work orders from its CSV export (UTF-8, header row). Every good row is "
        "imported; every bad one is printed with its line number. Exits 1 when the file cannot be read or "
        "its header is wrong (nothing imported), and also when any row was refused (the others are imported)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the CSV file")

    def handle(self, *args, **options):
        try:
            report = complaints_import_csv(source=options["file"])
        except ComplaintImportFailed as exc:
            raise CommandError(f"{options['file']}: {exc.detail}") from exc
        for row in report.refused:
            self.stdout.write(str(row))
        self.stdout.write(report.summary())
        if report.refused:
            raise CommandError(f"{len(report.refused)} rows refused; the other {report.imported} were imported")
