"""Stop every process the local targets of a workspace started (CI cleans up after its demo).

The supervisor records each process by pid and start time in the target's state folder, so this
stops exactly the demo's processes and never a stranger that reused a pid.
"""

from __future__ import annotations

import sys
from pathlib import Path

from shipdeck.adapters.local.processes import STATE_FILE, ProcessSupervisor


def main(workspace: Path) -> None:
    for state in sorted((workspace / ".shipdeck").rglob(STATE_FILE)):
        supervisor = ProcessSupervisor(state.parent)
        for name in supervisor.names():
            supervisor.stop(name)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
