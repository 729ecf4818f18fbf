"""The package as installed from the wheel type-checks with ``mypy --strict`` (pyproject.toml's
[tool.mypy]), so users' type checkers see what the code promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import iap_token

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_package_passes_mypy_strict(tmp_path: Path) -> None:
    try:
        import mypy  # noqa: F401
    except ImportError:
        raise AssertionError("mypy is missing: run scripts/install-test-deps") from None
    package = Path(iap_token.__file__).parent
    assert "site-packages" in str(package), "the wheel's copy, not the source tree"
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "mypy-cache"), str(package)],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
