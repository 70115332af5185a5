"""``nas-skip datasets``: the built-in datasets and the file forms ``--dataset`` accepts."""

from __future__ import annotations

from rich.table import Table

from nas_skip.cli._app import app
from nas_skip.cli._common import _console

#: the file forms of ``--dataset PATH``, one line each
FILE_FORMS = (
    ("PATH.npz", "arrays x_train, y_train (optional x_val, y_val, x_test, y_test); x shaped "
     "(N, F) vector, (N, C, L) signal or 1-channel image, (N, C, H, W) or (N, H, W, C) image"),
    ("PATH.csv, PATH.parquet", "a table: --target COLUMN (default the last) holds the labels, "
     "every other column a numeric feature, standardised with train's statistics"),
    ("FOLDER", "images in train/CLASS/*.png|jpg|bmp (optional val/, test/), resized to "
     "--image-size N (default 32), normalised per channel"),
)  # fmt: skip


@app.command()
def datasets() -> None:
    """List the built-in datasets and the files --dataset PATH reads."""
    from nas_skip.data import DATASETS
    from nas_skip.data._files import CARVE_FRACTION, CARVE_SEED

    console = _console()
    table = Table(title="datasets", header_style="bold")
    for column in ("dataset", "domains", "input", "classes", "train/val/test", "description"):
        table.add_column(column, justify="right" if column == "classes" else "left",
                         no_wrap=column in ("dataset", "classes", "train/val/test"))  # fmt: skip
    for name in sorted(DATASETS):
        info = DATASETS[name]
        shapes = ", ".join(str(info.input_shapes[d]) for d in info.domains)
        sizes = "/".join(str(n) for n in info.sizes)
        table.add_row(name, ", ".join(info.domains), shapes, str(info.num_classes), sizes,
                      info.description)  # fmt: skip
    console.print(table)
    files = Table(title="files: --dataset PATH", header_style="bold")
    files.add_column("form")
    files.add_column("what it holds")
    for form, what in FILE_FORMS:
        files.add_row(form, what)
    console.print(files)
    console.print(
        f"A missing val or test split is carved from train ({CARVE_FRACTION:.0%} of each "
        f"class, seed {CARVE_SEED}); the search prints what it inferred: domain, input shape, "
        "classes and split sizes.",
        soft_wrap=True,
    )
