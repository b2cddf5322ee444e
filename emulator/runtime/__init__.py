"""The runtime under every job kind.

- :mod:`~emulator.runtime.docker`: the Docker seam (the only module that imports ``docker``);
- :mod:`~emulator.runtime.container`: one object owns a container's life (create, start, logs, stop, remove);
- :mod:`~emulator.runtime.cluster`: the containers of one job, their network and the run to the end;
- :mod:`~emulator.runtime.plan` and :mod:`~emulator.runtime.runner`: plans, and the runner that executes them;
- :mod:`~emulator.runtime.lifecycle`: the job contract (start, wait, run, stop, describe);
- :mod:`~emulator.runtime.session`: the process's shared Docker client and S3, labels and the exit sweep;
- :mod:`~emulator.runtime.sweep`: the one sweep of leftovers by label;
- :mod:`~emulator.runtime.resources`: instance types as Docker CPU and memory limits.
"""

from typing import TYPE_CHECKING

from emulator._lazy import exports

if TYPE_CHECKING:
    from emulator.runtime.inspect import image_tree
    from emulator.runtime.session import SESSION_ID, Session
    from emulator.runtime.sweep import Swept, sweep

__all__ = ["SESSION_ID", "Session", "Swept", "image_tree", "sweep"]
# Imported on first use (emulator._lazy): a job kind's plan module must not import the whole runtime.
__getattr__ = exports(
    __name__,
    {
        "SESSION_ID": "emulator.runtime.session",
        "Session": "emulator.runtime.session",
        "Swept": "emulator.runtime.sweep",
        "image_tree": "emulator.runtime.inspect",
        "sweep": "emulator.runtime.sweep",
    },
)
