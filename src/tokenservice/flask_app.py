"""The app the `flask` command loads (.flaskenv): every command, `flask db upgrade` (Procfile's `release:`) included."""

from . import create_app_or_exit

app = create_app_or_exit(migrations=True)
