"""Sections written by the profile and timing stages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ProfileSection:
    trace_files: list[str]


@dataclass
class TimingSection:
    pass
