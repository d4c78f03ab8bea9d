import sys

from kerassev.cli import main

sys.exit(main())
