import sys

from rebuild.cli import main

sys.exit(main())
