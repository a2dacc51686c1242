"""The security headers on every response (docs/browsers.md, "Security headers")."""

from flask import Flask, request

# The demo page (and nothing it loads) may talk only to its own origin.
DEMO_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# /docs: the same, except for Swagger UI's inline styles and data: images;
# never inline or evaluated scripts.
DOCS_CSP = DEMO_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'").replace(
    "img-src 'self'", "img-src 'self' data:"
)
PAGE_CSP = {"demo.page": DEMO_CSP, "docs.page": DOCS_CSP, "docs.swagger_ui": DOCS_CSP}
HSTS = "max-age=31536000; includeSubDomains"


def init_app(app: Flask) -> None:
    always = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer")]
    if app.config["APP_ENV"] == "production":
        always.append(("Strict-Transport-Security", HSTS))

    @app.after_request
    def add_security_headers(response):
        headers = response.headers
        # add(), not [] =: nothing else sets these, and this runs on every request.
        for name, value in always:
            headers.add(name, value)
        # Tokens and user data must not sit in shared or browser caches; a
        # route that means otherwise (the demo's files) sets its own.
        headers.setdefault("Cache-Control", "no-store")
        csp = PAGE_CSP.get(request.endpoint)
        if csp:
            headers.add("Content-Security-Policy", csp)
        if response.status_code == 204:
            # No content, so no content type (flask-smorest leaves application/json).
            headers.pop("Content-Type", None)
        return response
