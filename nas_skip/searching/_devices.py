"""Where a search's trials train: ``--device`` per backend.

- ``auto`` (the default): the local backend's worker ``i`` trains on ``cuda:(i mod n)``
  over the ``n`` GPUs this process sees (``CUDA_VISIBLE_DEVICES``), or on the CPU without
  CUDA; a Ray trial trains on the GPU Ray gave it (``--gpus-per-trial``; Ray sets its
  ``CUDA_VISIBLE_DEVICES``, so it is ``cuda`` to torch) and on the CPU when it asked for
  none. A Ray trial that asked for a GPU on a node where torch sees no CUDA (a CPU build
  of torch, a node that declares GPUs it does not have) trains on the CPU and says so.
- ``cpu``: every trial on the CPU.
- ``cuda`` / ``cuda:N``: every local worker on that GPU; on Ray, ``cuda`` insists on the
  trial's GPU (a trial without CUDA fails, naming its node), and ``cuda:N`` is refused:
  Ray chooses the GPUs.
"""

from __future__ import annotations

import os

from nas_skip.searching._config import SearchConfig, SearchError


def check_device(config: SearchConfig) -> None:
    """Refuse a ``--device`` this machine (local) or Ray (ray) cannot honour.

    Raises:
        SearchError: CUDA asked for where torch sees none, a GPU index out of range, or
            ``cuda:N`` / ``cuda`` without GPUs on Ray; the message names ``--device``.
    """
    device = config.device
    if config.backend == "ray":
        if device.startswith("cuda:"):
            raise SearchError(f"--device {device}: Ray assigns each trial its GPUs; use "
                              "--device cuda with --gpus-per-trial")  # fmt: skip
        if device == "cuda" and config.gpus_per_trial <= 0:
            raise SearchError("--device cuda: a Ray trial has a GPU only with --gpus-per-trial")
        return  # the GPUs are on the nodes, not necessarily here
    if not device.startswith("cuda"):
        return
    import torch  # only for CUDA: the search process that only waits loads no torch

    if not torch.cuda.is_available():
        raise SearchError(f"--device {device}: CUDA is not available here; use auto or cpu")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise SearchError(f"--device {device}: this machine sees {torch.cuda.device_count()} "
                          "CUDA devices")  # fmt: skip


def worker_device(device: str, index: int, count: int | None = None) -> str:
    """The device of the local backend's worker ``index``: round-robin over the ``count``
    visible GPUs (None: as torch counts them) for ``auto``; a fixed device stays."""
    if device != "auto":
        return device
    if count is None:
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return f"cuda:{index % count}" if count else "cpu"


def ray_trial_device(device: str, gpus: float, node: str) -> tuple[str, str | None]:
    """The device of a Ray trial on this node, and a warning when it had to fall back.

    Args:
        device: ``--device`` (auto, cpu or cuda; check_device refused cuda:N).
        gpus: the GPUs the trial asked for (``--gpus-per-trial``).
        node: this node's label, for the messages.

    Raises:
        SearchError: ``cuda`` on a node where torch sees no CUDA.
    """
    if device == "cpu" or gpus <= 0:
        return "cpu", None
    import torch

    if torch.cuda.is_available():
        return "cuda", None  # cuda:0 of the CUDA_VISIBLE_DEVICES Ray set for the trial
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    why = (f"torch sees no CUDA on node {node} (Ray gave it GPU {visible or 'none'}; "
           f"torch {torch.__version__})")  # fmt: skip
    if device == "cuda":
        raise SearchError(f"--device cuda: {why}")
    return "cpu", f"asked for {gpus:g} GPU but {why}: trained on the CPU"
