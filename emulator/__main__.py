"""``python -m emulator``."""

import sys

try:
    from emulator.cli import main
except KeyboardInterrupt:  # Ctrl-C while the modules load: nothing has started yet
    sys.stderr.write("interrupted\n")
    sys.exit(130)

sys.exit(main())
