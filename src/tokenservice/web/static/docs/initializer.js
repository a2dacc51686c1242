// Starts Swagger UI on /openapi.json. A file of its own, not an inline
// script, so that /docs keeps a Content-Security-Policy without 'unsafe-inline'.
"use strict";

window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: false,
  // The Authorize button's OAuth2 password flow posts a form to /token.
  oauth2RedirectUrl: window.location.origin + "/docs/oauth2-redirect.html",
});
