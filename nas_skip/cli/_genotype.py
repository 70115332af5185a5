"""Commands on one genotype: ``show`` and ``export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from nas_skip.cli._app import app
from nas_skip.cli._common import (
    _console,
    _load_genotype,
    _print_genotype,
    artifacts_option,
    storage_option,
    study_option,
)
from nas_skip.genotype import costs


@app.command()
def show(
    genotype: Annotated[Path, typer.Argument(help="Genotype JSON file.", metavar="GENOTYPE")],
    draw: Annotated[
        Path | None,
        typer.Option(
            "--draw", help="Also draw the topology to FILE.svg or FILE.png.", metavar="FILE"
        ),
    ] = None,
) -> None:
    """Validate a genotype and print its nodes, costs, edges and canonical hash."""
    g = _load_genotype(genotype)
    drawn = None
    if draw is not None:
        from nas_skip.draw import draw as draw_genotype  # matplotlib only when drawing

        drawn = draw_genotype(g, draw)
    console = _print_genotype(g, g.name or str(genotype))
    if drawn is not None:
        console.print(f"drawing: {drawn}", soft_wrap=True)


@app.command()
def export(
    out: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="Folder to write the files to.")
    ],
    genotype: Annotated[
        Path | None,
        typer.Option(
            "--genotype", metavar="FILE", help="A genotype JSON file.", rich_help_panel="Source"
        ),
    ] = None,
    study: Annotated[
        str | None,
        study_option("A search study: export its best trial.", rich_help_panel="Source"),
    ] = None,
    storage: Annotated[
        str | None,
        storage_option("The study's storage [runs/nas_skip.db].", rich_help_panel="Source"),
    ] = None,
    trial: Annotated[
        int | None,
        typer.Option(
            "--trial",
            metavar="N",
            help="Export this trial, not the best.",
            rich_help_panel="Source",
        ),
    ] = None,
    retrain_epochs: Annotated[
        int | None,
        typer.Option(
            "--retrain-epochs", metavar="N", help="Retrain when the trial's weights were not kept."
        ),
    ] = None,
    artifacts: Annotated[Path | None, artifacts_option(rich_help_panel="Source")] = None,
    class_name: Annotated[
        str, typer.Option("--class-name", metavar="NAME", help="Name of the nn.Module class.")
    ] = "Net",
) -> None:
    """Write a genotype, or a search's best trial with its weights, as standalone PyTorch."""
    if (genotype is None) == (study is None):
        raise typer.BadParameter(
            "give exactly one source: --genotype FILE, or --study NAME [--storage URL]",
            param_hint="'--genotype' / '--study'",
        )
    console = _console()
    if study is not None:
        from nas_skip.searching._config import DEFAULT_STORAGE
        from nas_skip.searching._export import export_trial

        url = storage or DEFAULT_STORAGE
        done = export_trial(url, study, out, trial, class_name, retrain_epochs,
                            artifacts=artifacts)  # fmt: skip
        if done.pareto:
            console.print("Pareto front (trial: values):", soft_wrap=True)
            for t in done.pareto:
                values = ", ".join(f"{v:.6g}" for v in t.values)
                console.print(f"  {t.number}: {values}", soft_wrap=True)
        values = ", ".join(f"{v:.6g}" for v in done.trial.values)
        how = "retrained" if done.retrained else "kept by the search"
        if not done.weights:
            how = "none (evaluated in a table; --retrain-epochs E trains it)"
        console.print(f"trial {done.trial.number} ({values}); weights {how}", soft_wrap=True)
        for path in done.files:
            console.print(f"wrote {path}", soft_wrap=True)
        _how_to_load(console, out, class_name)
        return
    assert genotype is not None
    g = _load_genotype(genotype)
    from nas_skip.export import export_code  # torch only when exporting

    source = export_code(g, class_name=class_name)  # before writing: a bad name writes nothing
    out.mkdir(parents=True, exist_ok=True)
    model_path, json_path = out / "model.py", out / "genotype.json"
    model_path.write_text(source, encoding="utf-8")
    json_path.write_text(g.dumps() + "\n", encoding="utf-8")
    params = sum(r.params for r in costs(g))
    console.print(
        f"wrote {model_path} (class {class_name}, {params:,} parameters)", soft_wrap=True
    )
    console.print(f"wrote {json_path}", soft_wrap=True)
    _how_to_load(console, out, class_name)


def _how_to_load(console: Console, out: Path, class_name: str) -> None:
    for line in (
        f"load trained weights (a state_dict) with, from {out}:",
        "    import torch",
        f"    from model import {class_name}",
        f"    net = {class_name}()",
        '    net.load_state_dict(torch.load("weights.pt", weights_only=True))',
    ):
        console.print(line, soft_wrap=True)
