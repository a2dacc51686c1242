"""The app gunicorn serves (Procfile's `web:`): no `flask db` commands, so no Alembic in the workers.

With HS256, no cryptography either: PyJWT imports it whenever it is
installed, but only RS256 and ES256 key pairs use it (key_pairs.py). Left
out, each worker holds 8 MB less (README, "Performance"). Read as config.py
reads JWT_ALGORITHM, before anything imports PyJWT.
"""

import os
import sys

if (os.environ.get("JWT_ALGORITHM") or "HS256").strip().upper() == "HS256":
    sys.modules["cryptography"] = None  # importing it, or any part of it, raises ModuleNotFoundError

from tokenservice import create_app_or_exit  # noqa: E402 (after the line above, by design)

app = create_app_or_exit(migrations=False)
