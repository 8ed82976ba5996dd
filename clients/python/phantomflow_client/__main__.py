"""`python -m phantomflow_client COMMAND`: the client commands (see phantomflow_client.cli)."""

import sys

from phantomflow_client.cli import main

sys.exit(main())
