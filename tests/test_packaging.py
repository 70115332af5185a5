"""A wheel of nas-skip carries what an installed copy needs: the shipped search spaces
and the report template live at the repository root, and the wheel maps them into the
package, where they are found without a checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_a_wheel_carries_the_spaces_and_the_report_template(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                    "--outdir", str(tmp_path / "dist"), str(ROOT)],
                   check=True, capture_output=True)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("nas_skip-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    spaces = sorted(p.name for p in (ROOT / "search_spaces").glob("*.yaml"))
    assert spaces and {f"nas_skip/search_spaces/{s}" for s in spaces} <= names
    assert "nas_skip/dashboards/report.html" in names
    assert not any(n.startswith(("tests/", "scripts/")) for n in names)

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = textwrap.dedent(f"""
        import nas_skip
        from nas_skip.report._page import TEMPLATE, load_template
        from nas_skip.spaces import list_spaces, load_space, spaces_dir
        assert nas_skip.__file__.startswith({str(site)!r}), nas_skip.__file__
        assert spaces_dir().is_relative_to({str(site)!r}), spaces_dir()
        assert TEMPLATE.is_relative_to({str(site)!r}) and "$" in load_template().template
        for name in list_spaces():
            load_space(name)
        print(" ".join(list_spaces()))
    """)
    env = {k: v for k, v in os.environ.items() if k != "NAS_SKIP_SPACES"}
    env["PYTHONPATH"] = str(site)  # before the checkout's editable install on sys.path
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [s.removesuffix(".yaml") for s in spaces]
