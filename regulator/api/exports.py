"""The regulator's exports (API.md, Additions v1.1): ``GET /api/v1/regulator/exports/<name>.csv``
and ``.xlsx``, with the list's filters as query parameters. The rows are built in
``regulator.exports``; this view only picks the format, streams the answer and logs the export.

CSV streams (``StreamingHttpResponse``) as the rows are read, so the browser's download shows its
progress from the first row. XLSX is written to a temporary file at constant memory and then served
with ``FileResponse`` (a ZIP is complete only when its directory is written, at the end)."""

from __future__ import annotations

from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, OpenApiTypes, extend_schema
from rest_framework.views import APIView

from core.api import ErrorSerializer
from core.permissions import IsRegulator
from regulator import exports

PARAMETERS = {
    "merchants": [
        OpenApiParameter("risk_level", str, enum=["low", "medium", "high"]),
        OpenApiParameter("district", str, description="District code, e.g. 110105"),
        OpenApiParameter("category", str),
        OpenApiParameter("flagged", bool),
    ],
    "cards": [OpenApiParameter("merchant", OpenApiTypes.UUID), OpenApiParameter("state", str)],
    "refunds": [OpenApiParameter("state", str), OpenApiParameter("overdue", bool)],
    "complaints": [
        OpenApiParameter("state", str),
        OpenApiParameter("merchant", OpenApiTypes.UUID),
        OpenApiParameter("district", str),
        OpenApiParameter("category", str),
        OpenApiParameter("source", str),
    ],
    "journal": [
        OpenApiParameter("from", OpenApiTypes.DATE, description="Beijing date, inclusive"),
        OpenApiParameter("to", OpenApiTypes.DATE, description="Beijing date, inclusive"),
        OpenApiParameter("code", str),
    ],
}
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "xlsx": exports.XLSX_CONTENT_TYPE}


class ExportApi(APIView):
    permission_classes = [IsRegulator]
    name = ""
    file_format = ""

    def export(self, request):
        export = exports.export_build(name=self.name, params=request.query_params.dict(), user=request.user)
        filename = exports.export_filename(export, self.file_format)
        actor_id = request.user.pk
        if self.file_format == "csv":

            def logged(rows: int, complete: bool) -> None:
                exports.export_recorded(
                    export=export, file_format="csv", actor_id=actor_id, rows=rows, complete=complete
                )

            response = StreamingHttpResponse(
                exports.csv_stream(export, on_done=logged), content_type=CONTENT_TYPES["csv"]
            )
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
        else:
            handle, rows = exports.xlsx_file(export)
            exports.export_recorded(export=export, file_format="xlsx", actor_id=actor_id, rows=rows)
            response = FileResponse(handle, as_attachment=True, filename=filename, content_type=CONTENT_TYPES["xlsx"])
        response["Cache-Control"] = "no-store"
        response["X-Accel-Buffering"] = "no"  # a proxy passes the rows on as they come
        return response


def export_view(name: str, file_format: str):
    """The view of one export in one format (ten routes, one schema operation each)."""

    @extend_schema(
        operation_id=f"regulator_export_{name}_{file_format}",
        parameters=PARAMETERS[name],
        responses={
            (200, CONTENT_TYPES[file_format].split(";")[0]): OpenApiResponse(
                OpenApiTypes.BINARY, description=f"The {name} export ({file_format.upper()})."
            ),
            400: ErrorSerializer,
        },
    )
    def get(self, request):
        return self.export(request)

    view = type(
        f"Export{name.title()}{file_format.title()}Api",
        (ExportApi,),
        {"name": name, "file_format": file_format, "get": get},
    )
    return view.as_view()
