"""Files only their owner may read: folders 0700, files 0600.

The data folder holds what must stay private — the gateway database (every account's
encryption key), the ledger, the sandbox credentials, the receiver's token, verification
mails — so every folder and file the console and the gateway make there is created private,
whatever the umask. SQLite creates its ``-wal`` and ``-shm`` files with the mode of the
database file, so a database made private (:func:`sqlite_file` before the first connection)
keeps them private too.

Only what is ours is ever tightened: a folder made here, and the console's own files in its
data folder (:func:`secure_data_folder`, for a folder made by an older version). A folder
that already existed — ``/tmp`` named by ``--db /tmp/gw.db``, a home folder named by
``KEDA_DATA_DIR`` — keeps its mode, and so do the files in it that are not ours.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600

# What the console and its sandbox gateway keep in the data folder.
DATA_FILES = (
    "ledger.db",
    "gateway.db",
    "webhook_token",
    "sandbox_port",
    "sandbox_account.json",
    "campaign_options.json",
)
DATA_SUFFIXES = ("", "-wal", "-shm", "-journal", ".tmp")
DATA_FOLDERS = ("mail",)  # the sandbox gateway's verification mails


def private_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` as a folder, made (with its parents) only its owner can enter if missing.

    A folder that already exists is left as it is: it may be shared (see the module's note).
    """
    folder = Path(path)
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    for made in missing:
        os.chmod(made, DIR_MODE)  # mkdir's mode is masked by the umask
    return folder


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


def sqlite_file(path: str | os.PathLike[str]) -> Path:
    """A SQLite database path made private before SQLite opens it (with its -wal and -shm).

    A missing folder is not made here: SQLite's own error says the path is wrong.
    """
    file = Path(path)
    if not file.parent.is_dir():
        return file
    # Never open an existing database: closing any descriptor of a file drops every POSIX
    # lock this process holds on it, and SQLite's locks (another connection of this process)
    # would silently go — another process could then delete the WAL under it.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    _tighten(file, FILE_MODE)
    for suffix in ("-wal", "-shm", "-journal"):
        _tighten(file.with_name(file.name + suffix), FILE_MODE)
    return file


def _tighten(path: Path, mode: int) -> None:
    """chmod ``path`` when it is there and is no symbolic link (chmod would follow it out)."""
    try:
        if not path.is_symlink() and path.exists():
            os.chmod(path, mode)
    except OSError as exc:  # not ours to change (another owner): say so, carry on
        log.warning("could not make %s private: %s", path, exc.strerror)


def _shared(folder: Path) -> bool:
    """A folder others may write to (``/tmp``): never ours to tighten."""
    mode = folder.stat().st_mode
    return bool(mode & stat.S_ISVTX or mode & stat.S_IWOTH)


def secure_data_folder(path: str | os.PathLike[str]) -> Path:
    """Make the data folder private: itself 0700, the console's own files in it 0600.

    For a folder made before files were created private. The folder itself is tightened
    only when it holds nothing but the console's own files (a dedicated data folder) and
    is not shared; other files in it are never touched.
    """
    folder = private_dir(path)
    ours = {name + suffix for name in DATA_FILES for suffix in DATA_SUFFIXES}
    entries = list(folder.iterdir())
    for entry in entries:
        if entry.name in ours:
            _tighten(entry, FILE_MODE)
        elif entry.name in DATA_FOLDERS and entry.is_dir() and not entry.is_symlink():
            _tighten(entry, DIR_MODE)
            for inner in entry.iterdir():
                _tighten(inner, FILE_MODE)
    foreign = [e.name for e in entries if e.name not in ours and e.name not in DATA_FOLDERS]
    if foreign or _shared(folder):
        if stat.S_IMODE(folder.stat().st_mode) & 0o077:
            log.warning(
                "the data folder %s is readable by others and holds other files; it is left "
                "as it is (its KedaSMS files are private). Use a folder of its own.",
                folder,
            )
    else:
        _tighten(folder, DIR_MODE)
    return folder


__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "private_dir",
    "secure_data_folder",
    "sqlite_file",
    "write_private",
]
