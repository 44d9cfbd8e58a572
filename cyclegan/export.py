"""`python -m cyclegan.export`: the command users type; the code is `cyclegan.inference.export`."""

import sys

from cyclegan.inference.export import main

if __name__ == "__main__":
    sys.exit(main())
