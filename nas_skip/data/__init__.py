"""Datasets for the search, loaded into memory as tensors without any download.

``load_dataset(name, domain)`` returns a :class:`Dataset` split into train / val / test;
``DATASETS`` says what each name offers (domains, shapes, sizes) without loading it.
A path names a file dataset (an .npz, a .csv / .parquet table or an image folder; see
``dataset_name``). Generated datasets (mnist1d, shapes, shapes_seg, pydoc_lm, mqar) are cached
as .npz files in ``cache_dir``, ``$NAS_SKIP_CACHE`` or ``~/.cache/nas-skip``.

Sequence datasets (domain ``sequence``) hold int64 token ids; their ``task`` (one of
``TASKS``) says what the labels mean; ``IGNORE_INDEX`` marks positions that are not scored.
"""

from nas_skip.data._base import DATA_DOMAINS, IGNORE_INDEX, TASKS, Dataset
from nas_skip.data._common import DatasetError
from nas_skip.data._registry import (
    DATASETS,
    DatasetInfo,
    dataset_info,
    dataset_name,
    list_datasets,
    load_dataset,
)

__all__ = [
    "DATASETS",
    "DATA_DOMAINS",
    "Dataset",
    "DatasetError",
    "DatasetInfo",
    "IGNORE_INDEX",
    "TASKS",
    "dataset_info",
    "dataset_name",
    "list_datasets",
    "load_dataset",
]
