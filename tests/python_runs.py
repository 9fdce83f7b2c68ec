"""Running a few lines of Python in a fresh interpreter, with a copied tree first on its path:
how the tests of compiled modules see what an import does when a module is stale."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def python_in(tree: Path, code: str) -> subprocess.CompletedProcess:
    """Run *code* with *tree* as the working directory and first on ``PYTHONPATH``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=60)
