"""Files only their owner may read: folders 0700, files 0600.

The data folder holds what must stay private — the gateway database (every account's
encryption key), the ledger, the sandbox credentials, the receiver's token, verification
mails — so every folder and file in it is created private, whatever the umask, and a folder
made before this rule is tightened when it is opened (:func:`secure_tree`). SQLite creates its
``-wal`` and ``-shm`` files with the mode of the database file, so a database made private
(:func:`private_file` before the first connection) keeps them private too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` as a folder only its owner can enter (made with its parents if missing)."""
    folder = Path(path)
    folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(folder, DIR_MODE)  # mkdir's mode is masked by the umask, and it may have existed
    return folder


def private_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as a file only its owner can read; created empty if missing (its folder too)."""
    file = Path(path)
    private_dir(file.parent)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    os.chmod(file, FILE_MODE)
    return file


def write_private(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically, as a file only its owner can read."""
    file = Path(path)
    private_dir(file.parent)
    tmp = file.with_name(file.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, file)
    return file


def secure_tree(path: str | os.PathLike[str]) -> Path:
    """Make ``path`` private, with every folder (0700) and file (0600) under it.

    For data folders made before files were created private; symbolic links are left alone
    (``chmod`` would follow them out of the folder).
    """
    root = private_dir(path)
    for current, folders, files in os.walk(root):
        for name in folders:
            entry = Path(current, name)
            if not entry.is_symlink():
                os.chmod(entry, DIR_MODE)
        for name in files:
            entry = Path(current, name)
            if not entry.is_symlink() and stat.S_ISREG(entry.lstat().st_mode):
                os.chmod(entry, FILE_MODE)
    return root


def sqlite_file(path: str | os.PathLike[str]) -> Path:
    """A SQLite database path made private before SQLite opens it (with its -wal and -shm).

    A missing folder is not made here: SQLite's own error says the path is wrong.
    """
    file = Path(path)
    if not file.parent.is_dir():
        return file
    fd = os.open(file, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    os.chmod(file, FILE_MODE)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = file.with_name(file.name + suffix)
        if companion.exists() and not companion.is_symlink():
            os.chmod(companion, FILE_MODE)
    return file


__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "private_dir",
    "private_file",
    "secure_tree",
    "sqlite_file",
    "write_private",
]
