"""``python -m iap_token ARGS``: runs the ``iap-token`` binary with ARGS (it replaces this process)."""

from __future__ import annotations

import os
import subprocess
import sys

from ._binary import find_binary
from ._token import IAPTokenError


def main() -> int:
    try:
        binary = find_binary()
    except IAPTokenError as error:
        print(error, file=sys.stderr)
        return 1
    args = [binary, *sys.argv[1:]]
    if os.name == "nt":
        # Windows has no exec: run it and pass its exit code on.
        return subprocess.call(args)
    os.execv(binary, args)
    return 1  # not reached: execv does not return


if __name__ == "__main__":
    sys.exit(main())
