"""Where a study's artifacts are read: only in the folders the user names, only by artifact id.

A study is untrusted input (a storage file someone sent, a shared PostgreSQL database):
its ``artifacts`` user attribute and every artifact id its attributes hold are data, not
paths. An id is read only when it has the form :func:`optuna.artifacts.upload_artifact`
writes (a lowercase UUID), and only through Optuna's
:class:`~optuna.artifacts.FileSystemArtifactStore` of a folder the user chose: the
``--artifacts`` given to ``export``, ``report`` or ``dashboard`` (the one given to
``search``), else ``runs/artifacts``, where ``search`` writes by default. The folder a
study records is named in messages ("pass --artifacts ...") and never read from, so a
study that records ``/etc`` reads nothing there.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.artifacts.exceptions import ArtifactNotFound

from nas_skip.errors import brief
from nas_skip.searching._config import DEFAULT_ARTIFACTS, SearchError

#: the artifact ids upload_artifact writes: str(uuid.uuid4())
ARTIFACT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: the study user attribute where a search records its artifact folder (a hint only)
RECORDED = "artifacts"


def as_artifact_id(value: object) -> str | None:
    """``value`` when it is an artifact id, else None (``../x``, an absolute path, a name)."""
    return value if isinstance(value, str) and ARTIFACT_ID.fullmatch(value) else None


def recorded_folder(study: optuna.Study) -> str | None:
    """The artifact folder the study says its search wrote to, as a message shows it: a
    hint, never a place to read (a study may say anything)."""
    return shown_folder(study.user_attrs.get(RECORDED))


def shown_folder(value: object) -> str | None:
    """A recorded folder as a message shows it: as it is when it is a plain path of at
    most 300 characters (so that it can be copied into ``--artifacts``), else bounded
    (:func:`~nas_skip.errors.brief`); None for no folder."""
    if not isinstance(value, str) or not value:
        return None
    return value if len(value) <= 300 and value.isprintable() else brief(value)


class ArtifactFolders:
    """Optuna's artifact store protocol over the folders a user chose.

    Every id must be an artifact id (:data:`ARTIFACT_ID`), else it is not found; a read
    tries the folders in order, through each one's ``FileSystemArtifactStore``; a write
    (an upload in optuna-dashboard) goes to the first. Serves optuna-dashboard as its
    ``artifact_store`` and is how ``export`` and ``report`` read.
    """

    def __init__(self, folders: Sequence[str | Path] | str | Path | None = None) -> None:
        if folders is None or isinstance(folders, str | Path):
            folders = [folders or DEFAULT_ARTIFACTS]
        self.folders = tuple(dict.fromkeys(Path(f) for f in folders)) or (DEFAULT_ARTIFACTS,)

    def __str__(self) -> str:
        return ", ".join(str(f) for f in self.folders)

    def serves(self, folder: str | Path) -> bool:
        """Whether ``folder`` is one of the folders read (compared resolved)."""
        try:
            target = Path(folder).resolve()
        except (OSError, ValueError):  # a NUL byte, a path too long: no folder of ours
            return False
        return any(f.resolve() == target for f in self.folders)

    def _holder(self, artifact: str) -> FileSystemArtifactStore:
        if as_artifact_id(artifact) is None:
            raise ArtifactNotFound(f"not an artifact id: {artifact[:80]!r}")
        for folder in self.folders:
            if (folder / artifact).is_file():
                return FileSystemArtifactStore(folder)
        raise ArtifactNotFound(f"artifact {artifact} is not in {self}")

    def open_reader(self, artifact_id: str) -> BinaryIO:
        return self._holder(artifact_id).open_reader(artifact_id)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        if as_artifact_id(artifact_id) is None:
            raise ValueError(f"not an artifact id: {artifact_id[:80]!r}")
        self.folders[0].mkdir(parents=True, exist_ok=True)
        FileSystemArtifactStore(self.folders[0]).write(artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        self._holder(artifact_id).remove(artifact_id)

    def read(self, artifact: object, limit: int) -> bytes | None:
        """The artifact's bytes; None when ``artifact`` is not an artifact id, no folder
        holds it, or it is larger than ``limit`` bytes."""
        found = as_artifact_id(artifact)
        if found is None:
            return None
        try:
            with self.open_reader(found) as f:
                data = f.read(limit + 1)
        except (ArtifactNotFound, OSError):
            return None
        return data if len(data) <= limit else None


#: the file in an artifact folder that names it: a search's workers check they see the
#: folder its driver writes to (on a cluster, a folder on storage every node mounts)
STORE_MARK = ".nas-skip-store"
_MARK = re.compile(r"[0-9a-f]{32}")


def mark_store(folder: Path) -> str:
    """The id written in ``folder``'s mark, made (with the folder) on first use.

    Raises:
        SearchError: the folder cannot be made or written (naming ``--artifacts``).
    """
    path = folder / STORE_MARK
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            with path.open("x") as f:  # one id, even when two searches start at once
                f.write(secrets.token_hex(16))
        found = _read_mark(path)
        if found is None:  # someone wrote something else there: a fresh id
            found = secrets.token_hex(16)
            path.write_text(found)
    except OSError as exc:
        raise SearchError(f"--artifacts {folder}: cannot write ({exc.strerror or exc})") from None
    return found


def _read_mark(path: Path) -> str | None:
    try:
        with path.open() as f:
            text = f.read(64).strip()  # bounded: the file is ours, but may be anything
    except (OSError, UnicodeDecodeError):
        return None
    return text if _MARK.fullmatch(text) else None


def check_store(folder: Path, mark: str, where: str) -> None:
    """Refuse to write artifacts to a folder that is not the search's own.

    Raises:
        SearchError: ``folder`` has no mark, or another one: on a cluster, the node
            ``where`` does not see the driver's folder (no shared storage there); its
            artifacts would land where export, report and the dashboard never look.
    """
    if _read_mark(folder / STORE_MARK) != mark:
        raise SearchError(
            f"--artifacts {folder}: {where} does not see the folder the search started "
            "with; put --artifacts on storage every node mounts at the same path (NFS), "
            "or the weights and drawings of its trials would be lost"
        )
