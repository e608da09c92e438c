"""`python -m kubelab.cli` is the `kubelab` command."""

import sys

from .main import main

sys.exit(main())
