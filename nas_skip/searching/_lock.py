"""A lock on one study across the processes, and the machines, that run its trials.

The local backend's workers decide whether to start another trial by counting the
study's finished and running trials; the count and the new trial's creation must not
interleave with another worker's, or both see room for one more and the study ends one
past its target. The lock makes the pair atomic: PostgreSQL's advisory lock where the
study lives in PostgreSQL (it spans machines), an exclusive ``flock`` on a file beside a
SQLite or journal file (``runs/nas_skip.db.nas-skip-lock``: those files are shared by the
processes of one host). Either is released by the server or the operating system when its
holder dies. Other storages (in memory: one process) take no lock.
"""

from __future__ import annotations

import os
from typing import Any

import optuna
import sqlalchemy

from nas_skip.searching._queries import rdb_of
from nas_skip.searching._storage import storage_file

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, the count may overshoot by one
    fcntl = None  # type: ignore[assignment]

#: the first key of PostgreSQL's two-key advisory lock: nas-skip's, apart from others'
_PG_CLASS = 0x6E61_73  # "nas"


class StudyLock:
    """An exclusive lock on ``study``, taken and given back any number of times.

    ``release`` without the lock held does nothing, so a caller can release on every way
    out without tracking whether it holds it.
    """

    def __init__(self, study: optuna.Study, storage_url: str) -> None:
        self.study = study
        rdb = rdb_of(study._storage)
        self._engine = rdb.engine if rdb and rdb.engine.dialect.name == "postgresql" else None
        file = storage_file(storage_url)
        self._path = None if file is None else file.with_name(f"{file.name}.nas-skip-lock")
        self._held: Any = None  # the open connection or file while held

    def acquire(self) -> None:
        if self._held is not None:
            return
        if self._engine is not None:
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:c, :s)"),
                                   {"c": _PG_CLASS, "s": self.study._study_id})  # fmt: skip
            except BaseException:
                connection.close()
                raise
            self._held = connection
        elif fcntl is not None and self._path is not None:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            self._held = fd

    def release(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        if isinstance(held, int):
            os.close(held)  # closing the file gives the flock back
            return
        try:  # a session lock outlives a transaction: give it back before the pool has it
            held.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:c, :s)"),
                         {"c": _PG_CLASS, "s": self.study._study_id})  # fmt: skip
        except BaseException:
            held.invalidate()  # never back to the pool holding the lock: the server drops it
            raise
        finally:
            held.close()
