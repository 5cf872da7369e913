import sys

from cprop.cli import main

sys.exit(main())
