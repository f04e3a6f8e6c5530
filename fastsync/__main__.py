import sys

from fastsync.cli import main

sys.exit(main())
