"""Broken site profiles, for the tests of harness/sites.py and harness/references.py: one written into the test's
folder, and the one line harness.sites must refuse it with."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness import sites
from harness.sites import SiteError


def load_error(path: Path) -> str:
    """What harness.sites says about the profile at `path`, which it must refuse: one line that names the file first
    (returned without it)."""
    with pytest.raises(SiteError) as error:
        sites.load(path)
    message = str(error.value)
    assert "\n" not in message, f"a profile error must be one line, got: {message!r}"
    assert message.startswith(f"{path}: "), f"a profile error names its file first: {message}"
    return message.removeprefix(f"{path}: ")


def write_profile(folder: Path, name: str, text: str) -> Path:
    """The profile `folder/<name>.toml` holding `text`."""
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path
