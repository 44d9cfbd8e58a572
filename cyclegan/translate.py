"""`python -m cyclegan.translate`: the command users type; the code is `cyclegan.inference.translate`."""

import sys

from cyclegan.inference.translate import main

if __name__ == "__main__":
    sys.exit(main())
