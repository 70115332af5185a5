"""``nas-skip report``: a study's trial table and its self-contained report page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nas_skip.cli._app import app
from nas_skip.cli._common import ArtifactsOption, StorageOption, StudyOption
from nas_skip.errors import printable


@app.command()
def report(
    study: StudyOption,
    out: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="Folder to write the report into.")
    ],
    storage: StorageOption = None,
    artifacts: ArtifactsOption = None,
) -> None:
    """Write trials.csv, trials.parquet and report.html (one file, opens offline)."""
    from nas_skip.dashboard import default_storage
    from nas_skip.report import write_report

    files = write_report(storage or default_storage(), study, out, artifacts)
    # one path per line, nothing else: easy to pipe into a script or an `open` (escaped
    # where a terminal must not get it raw, as everything nas-skip prints)
    for path in (files.csv, files.parquet, files.html):
        print(printable(str(path)))
