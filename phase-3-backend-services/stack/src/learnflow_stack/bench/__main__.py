"""``python -m learnflow_stack.bench``: the same as `learnflow-stack bench`."""

import sys

from learnflow_stack.bench.main import main

sys.exit(main())
