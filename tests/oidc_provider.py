"""A small OpenID Connect provider for the sign-in tests, on the standard library's http.server (ID
tokens signed RS256 with Authlib's joserfc). The sign-in page asks for an e-mail and signs that
person in: no password, no network, localhost only.

    with OIDCProvider() as provider:
        provider.secrets_toml(app_url)   # the [auth] section for Streamlit's st.login

Endpoints: /.well-known/openid-configuration, /authorize (GET: the form; POST: the redirect back
with a code), /token (the code for an ID token), /userinfo, /jwks.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID, CLIENT_SECRET = "compression-explorer", "test-client-secret"


class OIDCProvider:
    def __init__(self):
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})
        self.codes: dict[str, dict] = {}    # code -> claims waiting for /token
        self.tokens: dict[str, dict] = {}   # access token -> claims (for /userinfo)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "OIDCProvider":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def metadata(self) -> dict:
        return {"issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token", "userinfo_endpoint": f"{self.url}/userinfo",
                "jwks_uri": f"{self.url}/jwks", "response_types_supported": ["code"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"]}

    def secrets_toml(self, app_url: str) -> str:
        """The app's .streamlit/secrets.toml for this provider."""
        return (f'[auth]\nredirect_uri = "{app_url}/oauth2callback"\ncookie_secret = "{secrets.token_hex(32)}"\n'
                f'client_id = "{CLIENT_ID}"\nclient_secret = "{CLIENT_SECRET}"\n'
                f'server_metadata_url = "{self.url}/.well-known/openid-configuration"\n')

    def id_token(self, claims: dict) -> str:
        now = int(time.time())
        body = {"iss": self.url, "aud": CLIENT_ID, "iat": now, "exp": now + 3600, **claims}
        return jwt.encode({"alg": "RS256", "kid": "test-key"}, body, self.key)


def _handler(provider: OIDCProvider):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, body: str | dict, content_type: str = "application/json", headers=()):
            data = (json.dumps(body) if isinstance(body, dict) else body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            return {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}

        def do_GET(self):
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._send(200, provider.metadata())
            elif url.path == "/jwks":
                self._send(200, {"keys": [provider.key.as_dict(private=False)]})
            elif url.path == "/authorize":
                hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                                 for k, v in query.items())
                self._send(200, f'<html><body><h1>Test sign-in</h1><form method="post" action="/authorize">{hidden}'
                                f'<label>E-mail <input name="email" id="email"></label>'
                                f'<button type="submit" id="continue">Continue</button></form></body></html>',
                           "text/html; charset=utf-8")
            elif url.path == "/userinfo":
                claims = provider.tokens.get(self.headers.get("Authorization", "").removeprefix("Bearer ").strip())
                self._send(200 if claims else 401, claims or {"error": "invalid_token"})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self):
            url = urlsplit(self.path)
            form = self._form()
            if url.path == "/authorize":
                if form.get("client_id") != CLIENT_ID:
                    self._send(400, {"error": "unauthorized_client"})
                    return
                code = secrets.token_urlsafe(16)
                email = form.get("email", "").strip()
                provider.codes[code] = {"sub": email, "email": email, "email_verified": True, "name": email,
                                        **({"nonce": form["nonce"]} if form.get("nonce") else {})}
                back = form["redirect_uri"] + "?" + urlencode({"code": code, "state": form.get("state", "")})
                self._send(302, "", "text/plain", headers=[("Location", back)])
            elif url.path == "/token":
                claims = provider.codes.pop(form.get("code", ""), None)
                if claims is None:
                    self._send(400, {"error": "invalid_grant"})
                    return
                access = secrets.token_urlsafe(16)
                provider.tokens[access] = {k: v for k, v in claims.items() if k != "nonce"}
                self._send(200, {"access_token": access, "token_type": "Bearer", "expires_in": 3600,
                                 "scope": "openid email profile", "id_token": provider.id_token(claims)})
            else:
                self._send(404, {"error": "not found"})
    return Handler
