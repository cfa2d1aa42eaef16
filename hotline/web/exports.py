"""The dashboard's export: the CLI's ``hotline export`` files, for the selected period and filter.

The rows are made by ``hotline.digests.export`` (the same loader, columns, formula guards and
writers as the command line); this module only narrows them to the tickets the filter selects
*and* the viewer may see -- a member exporting gets their group's tickets, as in the chat --
and writes into a temporary folder, in the worker thread, to send the bytes back.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hotline.digests.export import ExportData, load_export, write_csv, write_json, write_xlsx
from hotline.web.figures import Figures
from hotline.web.params import Filters
from hotline.web.state import WebState
from hotline.web.views import row_visible
from storage.models import Person

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv; charset=utf-8"
JSON = "application/json; charset=utf-8"


def narrow(data: ExportData, allowed: set[int]) -> ExportData:
    replays = {tid: r for tid, r in data.replays.items() if tid in allowed}
    events = [e for e in data.events if e.ticket_id in allowed]
    descriptions = {tid: text for tid, text in data.descriptions.items() if tid in allowed}
    return ExportData(data.period, data.inputs, replays, events, data.people, descriptions)


def stem_for(figures: Figures) -> str:
    p = figures.period
    return f"hotline-{p.first_day:%Y%m%d}-{p.last_day:%Y%m%d}"


async def export_file(state: WebState, person: Person, filters: Filters, fmt: str, sheet: str,
                      lang: str) -> tuple[str, str, bytes]:
    """(file name, content type, bytes) of the export the viewer asked for."""
    base, _ = await state.period_figures(filters.period)
    allowed = {tid for tid, row in base.rows.items() if filters.matches(row) and row_visible(person, row)}
    data = narrow(await state.worker.call(lambda reader: load_export(reader, base.period)), allowed)
    stem = stem_for(base)
    deps = state.reader

    def write() -> tuple[str, str, bytes]:
        with tempfile.TemporaryDirectory(prefix="hotline-web-") as folder:
            if fmt == "xlsx":
                path = write_xlsx(Path(folder) / f"{stem}.xlsx", data, deps, lang)
                return path.name, XLSX, path.read_bytes()
            if fmt == "json":  # for programs: codes and UTC instants (``raw_records``)
                path = write_json(Path(folder) / f"{stem}-raw.json", data)
                return path.name, JSON, path.read_bytes()
            paths = write_csv(Path(folder), stem, data, deps, lang)
            chosen = paths[0] if sheet == "tickets" else paths[1]
            return chosen.name, CSV, chosen.read_bytes()

    return await state.worker.call_sync(write)
