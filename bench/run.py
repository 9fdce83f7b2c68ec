"""Run every benchmark in bench/ in turn (``make bench``)."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for script in sorted(HERE.glob("*.py")):
    if script.name in ("run.py", "__init__.py") or script.name.startswith("_"):
        continue  # _engine.py etc. are shared helpers, not benchmarks
    print(f"== {script.name}", flush=True)
    subprocess.run([sys.executable, str(script)], check=True)
