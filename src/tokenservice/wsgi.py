"""The app gunicorn serves (Procfile's `web:`): no `flask db` commands, so no Alembic in the workers."""

from . import create_app_or_exit

app = create_app_or_exit(migrations=False)
