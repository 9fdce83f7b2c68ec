"""Running a few lines of Python in a fresh interpreter over a copy of parts of the tree: how
the tests of compiled modules see what an import does when a module is stale."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copy_tree(tree: Path, *paths: str) -> None:
    """Copy these files and packages of the project (repo-relative, modification times kept,
    no ``__pycache__`` or generated C) into *tree*, with an empty ``__init__.py`` for each
    package above them that is not copied whole."""
    for relative in paths:
        source, target = ROOT / relative, tree / relative
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.c"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        for package in target.parents:
            if package == tree:
                break
            if not (package / "__init__.py").exists():
                (package / "__init__.py").write_text("")


def python_in(tree: Path, code: str) -> subprocess.CompletedProcess:
    """Run *code* with *tree* as the working directory and first on ``PYTHONPATH``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=60)
