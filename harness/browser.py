"""Fixtures for the browser tests: the book built once per session, served on 127.0.0.1, and headless Chromium."""
from __future__ import annotations
