import sys

from geonox.cli import main

sys.exit(main())
