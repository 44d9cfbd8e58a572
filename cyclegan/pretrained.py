"""`python -m cyclegan.pretrained`: the command users type; the code is `cyclegan.inference.pretrained`."""

import sys

from cyclegan.inference.pretrained import main

if __name__ == "__main__":
    sys.exit(main())
