"""`python bench/run.py ...` = `python -m bench ...` (the name CONTRIBUTING.md's layout table gives)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
