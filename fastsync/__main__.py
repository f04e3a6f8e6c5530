import sys

from fastsync.cli import entry

sys.exit(entry())
