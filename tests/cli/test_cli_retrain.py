"""``nas-skip retrain``: the table it prints, the files it writes, its one-line errors."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from helpers import CLI_SPACE as SPACE

from nas_skip.cli import main
from nas_skip.searching import SearchConfig, search

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose runs/nas_skip.db (the default storage) holds study cli-digits."""
    folder = tmp_path_factory.mktemp("cli-retrain")
    (folder / "cli.yaml").write_text(SPACE)
    (folder / "runs").mkdir()  # a storage's folder must exist (the default's alone is made)
    config = SearchConfig(space=str(folder / "cli.yaml"), trials=2, epochs=1, seed=0,
                          storage=f"sqlite:///{folder / 'runs' / 'nas_skip.db'}",
                          artifacts=str(folder / "runs" / "artifacts"))  # fmt: skip
    search(config, progress=False)
    return folder


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_retrain_prints_the_table_and_exports_the_best_seed(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(folder)  # the default storage and output folder are relative
    monkeypatch.setenv("COLUMNS", "120")
    code, out, err = run(["retrain", "--study", "cli-digits", "--trial", "1", "--epochs", "1",
                          "--seeds", "2"], capsys)  # fmt: skip
    assert code == 0, err
    study = optuna.load_study(study_name="cli-digits", storage="sqlite:///runs/nas_skip.db")
    r = study.user_attrs["retrain:1"]
    assert "cli-digits: retrained" in out
    assert f"{r['val_mean']:.4f} ± {r['val_std']:.4f}" in out
    assert f"{r['test_mean']:.4f} ± {r['test_std']:.4f}" in out
    weights = Path("runs", "retrain", "cli-digits", "trial-1", "weights.pt")
    assert f"wrote {weights}" in out and (folder / weights).is_file()
    assert f"best seed {r['best_seed']}" in out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--seeds", "0"], "error: --seeds: must be at least 1, got 0"),
        (["--epochs", "0"], "error: --epochs: must be at least 1, got 0"),
        (["--trial", "5"], "error: --trial 5: the study has trials 0 to 1"),
        (["--study", "nope"], "error: --study nope: no such study in"),
    ],
)
def test_bad_input_is_one_error_line(
    folder: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    storage = f"sqlite:///{folder / 'runs' / 'nas_skip.db'}"
    code, _, err = run(["retrain", "--storage", storage, "--study", "cli-digits", *args],
                       capsys)  # fmt: skip
    assert code == 2
    assert err.startswith(words) and err.count("\n") == 1, err
