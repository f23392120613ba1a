"""A trivial flow that reports how and where its execution ran (tests of warm executions).

The tests copy this folder to a temporary project folder and serve it with ``serve.py``.
"""

import json
import os
import sys
import time
from pathlib import Path

import probe_helper  # the project's own module: an edit on disk must reach the next run
from prefect import flow


@flow(name="axtrace-probe", persist_result=False)
def probe(out: str = "", sleep: float = 0.0) -> int:
    """Write what this execution sees to ``out`` (atomically), then sleep ``sleep`` seconds."""
    from prefect.settings import get_current_settings

    report = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "cpu_seconds": time.process_time(),
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "api_url": str(get_current_settings().api.url),
        "sys_path": sys.path,
        "argv": sys.argv,
        "executable": sys.executable,
        "helper": probe_helper.VALUE,
        "axtrace_modules": sorted(m for m in sys.modules if m.split(".")[0] == "axtrace"),
    }
    if out:
        Path(out + ".tmp").write_text(json.dumps(report))
        os.replace(out + ".tmp", out)
    time.sleep(sleep)
    return os.getpid()
