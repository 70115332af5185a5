"""Help text (issue 11, item 7): ``-h`` as well as ``--help``, bracketed defaults kept as
written, and metavars that name what an option takes (none for a flag)."""

from __future__ import annotations

import re

import pytest

from nas_skip.cli import app, main

COMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands if c.callback]


def help_of(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    assert info.value.code in (0, None), err
    return out


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # no help line wraps


def test_every_command_is_checked() -> None:
    assert {"search", "show", "export", "train", "spaces", "report", "retrain"} <= set(COMMANDS)


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_short_and_long_help_on_the_app(capsys: pytest.CaptureFixture[str], flag: str) -> None:
    out = help_of([flag], capsys)
    assert "Usage: nas-skip" in out and "search" in out


def test_search_help_keeps_its_bracketed_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    out = help_of(["search", "-h"], capsys)
    assert "Optuna storage URL or journal file [runs/nas_skip.db]." in out
    assert "local-search, tpe, random, nsga2 or evolution [local-search; nsga2 for MO]." in out
    assert "Artifact folder [runs/artifacts]." in out
    assert "accuracy[,params|latency|flops]." in out
    assert re.search(r"--storage +URL ", out) and re.search(r"--trials +N ", out)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_what_each_option_takes(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    out = help_of([command, "-h"], capsys)
    assert f"Usage: nas-skip {command}" in out
    assert not re.search(r"<(bool|str|int|float|path)>", out), out
    assert re.search(r"--help +-h +Show this message and exit", out)  # a flag: no metavar


def test_root_flags_have_no_metavar(capsys: pytest.CaptureFixture[str]) -> None:
    out = help_of(["-h"], capsys)
    assert "<bool>" not in out
    assert re.search(r"--debug +Show the traceback", out)
