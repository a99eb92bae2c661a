"""Fault injection for the reliability tests: a named point kills its own process.

Inert unless ``PERSONAHUB_FAULT_INJECT`` names the point; tests set it in a child process to
prove that a SIGKILL at that moment loses nothing and leaves nothing half-written.
"""

from __future__ import annotations

import os
import signal

from personahub_assets.settings import fault_point_armed


def fault_point(name: str) -> None:
    """SIGKILL this process when the environment asks for a fault at ``name``."""
    if fault_point_armed(name):
        os.kill(os.getpid(), signal.SIGKILL)
