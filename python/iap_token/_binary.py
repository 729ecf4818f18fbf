"""Where the ``iap-token`` binary is: ``$IAP_TOKEN_BINARY``, else the scripts directory of this Python
(where pip put the wheel's binary, for a venv or a ``--user`` install), else ``PATH``."""

from __future__ import annotations

import functools
import os
import shutil
import sys
import sysconfig

_EXE = "iap-token.exe" if os.name == "nt" else "iap-token"


@functools.lru_cache(maxsize=1)
def _scripts_dirs() -> tuple[str, ...]:
    dirs = [sysconfig.get_path("scripts"), os.path.dirname(sys.executable)]
    user_scheme = f"{os.name}_user" if os.name == "nt" else "posix_user"
    if sys.platform == "darwin" and "osx_framework_user" in sysconfig.get_scheme_names():
        user_scheme = "osx_framework_user"
    try:
        dirs.append(sysconfig.get_path("scripts", scheme=user_scheme))
    except KeyError:
        pass
    return tuple(d for d in dirs if d)


def find_binary() -> str:
    """The path of the ``iap-token`` binary; raises ``IAPTokenError`` when there is none."""
    explicit = os.environ.get("IAP_TOKEN_BINARY")
    if explicit:
        return explicit
    for directory in _scripts_dirs():
        candidate = os.path.join(directory, _EXE)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(_EXE)
    if found:
        return found
    from ._token import IAPTokenError

    raise IAPTokenError(
        "could not find the iap-token binary next to this Python or on PATH; "
        "reinstall with 'pip install iap-token' or set IAP_TOKEN_BINARY"
    )
