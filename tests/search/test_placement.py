"""Where trials train (``--device``) and where they write (the artifact folder's mark).

The GPU paths need a GPU; here (torch's CPU build) they are tested through the device
count the round-robin is given and through the refusals and fall-backs a machine without
CUDA gets. tests/search/test_cluster.py runs them on Ray nodes that declare GPUs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import CLI_SPACE, nas_skip_cli, search_config, write_space

from nas_skip.searching import SearchError
from nas_skip.searching._artifacts import STORE_MARK, check_store, mark_store
from nas_skip.searching._devices import check_device, ray_trial_device, worker_device
from nas_skip.searching._ray import _worker

NO_CUDA = not torch.cuda.is_available()


@pytest.mark.parametrize(("count", "devices"), [
    (0, ["cpu"] * 5),
    (1, ["cuda:0"] * 5),
    (2, ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]),
    (3, ["cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1"]),
])  # fmt: skip
def test_local_workers_take_the_visible_gpus_in_turn(count: int, devices: list[str]) -> None:
    assert [worker_device("auto", i, count) for i in range(5)] == devices
    assert [worker_device("cuda:1", i, count) for i in range(3)] == ["cuda:1"] * 3
    assert worker_device("cpu", 4, count) == "cpu"


def test_a_worker_without_cuda_trains_on_the_cpu() -> None:
    expected = "cpu" if NO_CUDA else "cuda:0"
    assert worker_device("auto", 0) == expected


@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:-1", "mps", ""])
def test_an_unknown_device_is_refused_naming_the_flag(tmp_path: Path, device: str) -> None:
    with pytest.raises(SearchError, match=r"^--device: must be 'auto', 'cpu', 'cuda' or"):
        search_config(tmp_path, write_space(tmp_path), device=device)


@pytest.mark.skipif(not NO_CUDA, reason="a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_on_a_machine_without_it_is_refused_before_the_study(
    tmp_path: Path, device: str
) -> None:
    config = search_config(tmp_path, write_space(tmp_path), device=device)
    with pytest.raises(SearchError, match=f"^--device {device}: CUDA is not available here"):
        check_device(config)
    check_device(config.with_(device="cpu"))
    check_device(config.with_(device="auto"))


def test_ray_chooses_the_gpus(tmp_path: Path) -> None:
    config = search_config(tmp_path, write_space(tmp_path), backend="ray", device="cuda:1")
    with pytest.raises(SearchError, match="^--device cuda:1: Ray assigns each trial its GPUs"):
        check_device(config)
    with pytest.raises(SearchError, match="^--device cuda: a Ray trial has a GPU only with"):
        check_device(config.with_(device="cuda"))
    check_device(config.with_(device="cuda", gpus_per_trial=0.5))  # the nodes have them


@pytest.mark.skipif(not NO_CUDA, reason="a machine without CUDA")
def test_a_ray_trial_that_asked_for_a_gpu_falls_back_to_the_cpu_and_says_so() -> None:
    assert ray_trial_device("auto", 0.0, "n1") == ("cpu", None)  # asked for none
    assert ray_trial_device("cpu", 1.0, "n1") == ("cpu", None)
    device, warning = ray_trial_device("auto", 0.25, "127.0.0.1/ab12cd34")
    assert device == "cpu" and warning is not None
    assert warning.startswith("asked for 0.25 GPU but torch sees no CUDA on node "
                              "127.0.0.1/ab12cd34")  # fmt: skip
    with pytest.raises(SearchError, match="^--device cuda: torch sees no CUDA on node n1"):
        ray_trial_device("cuda", 1.0, "n1")


@pytest.mark.skipif(not NO_CUDA, reason="a machine without CUDA")
def test_the_command_line_refuses_cuda_here_in_one_line(tmp_path: Path) -> None:
    space = tmp_path / "cli.yaml"
    space.write_text(CLI_SPACE)
    done = nas_skip_cli("search", "--space", space, "--device", "cuda:0", "--trials", "1",
                        cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == "error: --device cuda:0: CUDA is not available here; use auto or cpu\n"
    assert not (tmp_path / "runs" / "nas_skip.db").exists()  # refused before the study


# --- the artifact folder's mark ----------------------------------------------------------------
def test_a_folder_keeps_one_mark_and_a_worker_elsewhere_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "artifacts"
    mark = mark_store(folder)
    assert mark == mark_store(folder) and len(mark) == 32  # made once, then read
    check_store(folder, mark, "Ray node n1")
    with pytest.raises(SearchError, match=r"Ray node n2 does not see the folder the search"):
        check_store(folder, "0" * 32, "Ray node n2")  # another folder of the same path
    with pytest.raises(SearchError, match=r"^--artifacts .*: Ray node n3 does not see"):
        check_store(tmp_path / "elsewhere", mark, "Ray node n3")  # no folder at all


@pytest.mark.parametrize("content", [b"", b"x" * 10_000_000, b"\xff\xfe", b"../../etc/passwd"])
def test_a_hostile_mark_is_replaced_not_trusted(tmp_path: Path, content: bytes) -> None:
    folder = tmp_path / "artifacts"
    folder.mkdir()
    (folder / STORE_MARK).write_bytes(content)
    mark = mark_store(folder)
    assert len(mark) == 32 and (folder / STORE_MARK).read_text() == mark
    check_store(folder, mark, "here")


def test_a_ray_worker_refuses_a_folder_that_is_not_the_drivers(tmp_path: Path) -> None:
    config = search_config(tmp_path, write_space(tmp_path), backend="ray")
    mark_store(config.artifact_dir())
    with pytest.raises(SearchError, match="Ray node 127.0.0.1/ab12cd34 does not see the folder"):
        _worker(config.with_(store_mark="f" * 32), "127.0.0.1/ab12cd34")


def test_a_folder_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(SearchError, match=r"^--artifacts .*/file/artifacts: cannot write \("):
        mark_store(tmp_path / "file" / "artifacts")
