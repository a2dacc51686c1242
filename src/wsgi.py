from tokenservice import create_app

app = create_app()
