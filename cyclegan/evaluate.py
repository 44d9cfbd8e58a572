"""`python -m cyclegan.evaluate`: the command users type; the code is `cyclegan.inference.evaluate`."""

import sys

from cyclegan.inference.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
