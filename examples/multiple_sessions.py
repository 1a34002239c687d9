"""Several independent conversations at once: the seed scenario of parley.

Three sessions (two on one model, one on another) each get an opening message and a
follow-up that only makes sense with their own history; then a session with a chosen id is
created, the sessions are listed, that one is deleted, and everything is disposed.

The scenario's code is `parley/demo.py` (src/parley/demo.py), so that this example and the
`parley demo` command run exactly the same thing. By default it runs embedded and offline: a
SQLite file at ./.parley/parley.db and the `echo` model. Choose other models and stores with
flags or environment variables:

    python examples/multiple_sessions.py --model echo:alpha --other-model echo:beta
    PARLEY_MODEL=... PARLEY_OTHER_MODEL=... PARLEY_STORE=memory:// python examples/...
"""

import sys

from parley.demo import cli_main

if __name__ == "__main__":
    sys.exit(cli_main())
