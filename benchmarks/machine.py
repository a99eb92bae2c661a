"""What every benchmark result records about the machine it ran on."""

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def describe() -> dict:
    """Cores, CPU, platform and Python of this machine."""
    return {"cores": os.cpu_count(), "cpu": cpu_model(), "platform": platform.platform(),
            "python": platform.python_version()}
