"""CORS for browser frontends on the origins of CORS_ORIGINS, with credentials, on every path.

flask-cors writes the headers in an after_request hook of the app. Every response passes through
it, error answers included (Flask finalises an error handler's response like a view's: 401, 404,
405, 413, 500, 503 alike), so a page can read the real status of a refused request. What
flask-cors leaves to the routes is a preflight's status: to a path no route serves it would be
404, and a browser reports a failed preflight as a network error, hiding the status the request
itself would have had. So `answer_preflight` answers every preflight 200 before routing, and
flask-cors adds the grant (none for an origin not allowed).
"""
from flask import current_app, request
from flask_cors.core import get_cors_options, set_cors_headers

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
EXPOSED = ["ETag", "Location", "X-Request-ID", "Retry-After", "Idempotent-Replayed",
           "Content-Disposition", "WWW-Authenticate", "Allow"]
PREFLIGHT_MAX_AGE = 600


def answer_preflight():
    """before_request: a CORS preflight (OPTIONS with Access-Control-Request-Method) is 200 on
    any path, existing or not, without a token (it never carries one)."""
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        return current_app.response_class(status=200)
    return None


def configure(app, origins):
    """Grant the `origins` cross-origin access with credentials to every route."""
    app.before_request(answer_preflight)
    # allow_headers="*": any header the page asks for is granted to an allowed origin (frontends
    # send their own, e.g. X-Requested-With); no header gives a privilege the token does not.
    # A frontend served publicly may call a service on a private network or loopback (Chrome's
    # Private Network Access asks first): granted too, to the allowed origins only.
    options = get_cors_options(app, {
        "origins": list(origins), "supports_credentials": True, "allow_headers": "*", "methods": METHODS,
        "expose_headers": EXPOSED, "max_age": PREFLIGHT_MAX_AGE, "allow_private_network": True,
        "always_send": False})

    def add_cors_headers(response):
        """after_request, on every answer (errors too): it depends on the request's Origin, so
        caches must keep them apart (flask-cors says so only with several origins); a request
        with an Origin (a browser's cross-origin one) gets flask-cors's grant, or none. Without
        an Origin flask-cors would add nothing: not calling it saves 4% of a short request."""
        response.vary.add("Origin")
        if "Origin" in request.headers:
            set_cors_headers(response, options)
        return response

    app.after_request(add_cors_headers)
