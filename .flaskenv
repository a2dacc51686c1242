FLASK_APP=src/wsgi.py
