"""The harness plugin (harness/plugin.py) is loaded from pyproject.toml; fixtures live in harness/."""
