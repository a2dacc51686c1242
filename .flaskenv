FLASK_APP=src/flask_app.py
