"""The data folder and what is kept in it, private to the service's user.

Everything a service keeps on disk (SQLite databases, the issuer's keys, the demo
credentials) is created mode 0600 in a folder created mode 0700, whatever the
umask: another local user must not read an issuer's signing key or a session
database. Only the folder itself is created, never its parents, so a mistyped
path (``sqlite:////etc/gatehouse/x/authors.db``) is an error naming the variable
instead of a tree of new folders.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from gatehouse.common.errors import ConfigurationError

log = logging.getLogger("gatehouse.datadir")
FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(folder: Path, setting: str) -> Path:
    """``folder``, created 0700 when missing; its parent must exist.

    An existing folder that others may read is kept as it is, with a warning: it
    may be shared on purpose, and changing an operator's folder is not ours to do.
    """
    if folder.is_dir():
        if folder.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("%s (%s) is readable by other users; chmod 700 it", folder, setting)
        return folder
    if not folder.parent.is_dir():
        raise ConfigurationError(
            setting, f"the folder {folder.parent} does not exist (only {folder.name} is created)"
        )
    try:
        folder.mkdir(mode=FOLDER_MODE)
    except FileExistsError:
        pass  # another replica made it a moment ago
    except OSError as exc:
        raise ConfigurationError(setting, f"cannot create {folder}: {exc.strerror}") from None
    os.chmod(folder, FOLDER_MODE)  # mkdir's mode is masked by the umask
    return folder


def private_file(path: Path, setting: str) -> Path:
    """``path``, created empty and 0600 when missing (in :func:`private_folder`)."""
    private_folder(path.parent, setting)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise ConfigurationError(setting, f"cannot create {path}: {exc.strerror}") from None
    os.close(descriptor)
    return path
