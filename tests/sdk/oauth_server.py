"""In-memory OAuth 2.1 authorization server -- a TEST FIXTURE ONLY, never for real use.

It plays the authorization server of an upstream MCP server so the gateway's
"OAuth to upstream MCP servers" support can be tested end to end.  Built on
Authlib's Flask integration; clients, codes and tokens live in dicts.  There is
no login or consent page, registration is open and introspection needs no
client authentication.

    python oauth_server.py --port PORT [--token-ttl SECONDS] [--issuer-path PATH]

Listens on 127.0.0.1:PORT with issuer http://127.0.0.1:PORT[PATH].  With an issuer
path the OAuth endpoints move under PATH and the metadata is served at both
/.well-known/oauth-authorization-server/PATH (RFC 8414) and PATH/.well-known/...

  GET  /.well-known/oauth-authorization-server  RFC 8414 metadata
  POST /register     RFC 7591 registration, public or confidential clients
  GET  /authorize    code grant, PKCE S256 required; the test adds ?user=NAME
                     (default alice) and is redirected with a code at once
  POST /token        authorization_code, refresh_token (rotating)
  POST /revoke       RFC 7009        POST /introspect   RFC 7662
An unregistered https:// or http://127.0.0.1 client_id is fetched as a client
ID metadata document.  Test hooks: POST /test/revoke-user {"user": NAME},
POST /test/fail-refresh {"on": bool}, GET /test/stats.
"""

import argparse
import secrets
import threading
import time
from collections import Counter
from urllib.parse import urlparse

import requests
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (ClientMixin, AuthorizationCodeMixin, TokenMixin,
                                    InvalidGrantError, InvalidRequestError, grants,
                                    list_to_scope, scope_to_list)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint, InvalidClientMetadataError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask, jsonify, request

SCOPES = ["tools", "files"]
GRANT_TYPES = ["authorization_code", "refresh_token"]
AUTH_METHODS = ["none", "client_secret_post", "client_secret_basic"]
STAT_NAMES = ["registrations", "authorizations", "code_exchanges", "code_exchange_failures",
              "refreshes", "refresh_failures", "metadata_document_fetches"]
CODE_TTL = 600  # authorization codes live ten minutes and are single use


class InvalidTargetError(OAuth2Error):
    error = "invalid_target"  # RFC 8707 section 2


class Client(ClientMixin):
    def __init__(self, client_id, secret, meta):
        self.client_id, self.client_secret, self.meta = client_id, secret, meta
        self.redirect_uris = list(meta.get("redirect_uris") or [])
        self.auth_method = meta.get("token_endpoint_auth_method", "client_secret_basic")
        # Lenient default: a client that omits grant_types may refresh too.
        self.grant_types = meta.get("grant_types") or GRANT_TYPES
        self.scope = meta.get("scope") or list_to_scope(SCOPES)

    # ClientMixin: what Authlib asks of a client.
    def get_client_id(self): return self.client_id
    def check_response_type(self, response_type): return response_type == "code"
    def check_grant_type(self, grant_type): return grant_type in self.grant_types
    def check_redirect_uri(self, uri): return uri in self.redirect_uris  # exact match (OAuth 2.1)

    def get_default_redirect_uri(self):
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope):
        allowed = scope_to_list(self.scope)
        if not scope:  # no scope asked for: grant everything the client may have
            return list_to_scope(allowed)
        return list_to_scope([s for s in scope_to_list(scope) if s in allowed])

    def check_client_secret(self, client_secret):
        return bool(self.client_secret) and secrets.compare_digest(self.client_secret, client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method == self.auth_method if endpoint in ("token", "revocation") else True


class AuthCode(AuthorizationCodeMixin):
    def __init__(self, code, client_id, redirect_uri, scope, user, challenge, method, resource):
        self.code, self.client_id, self.redirect_uri, self.scope = code, client_id, redirect_uri, scope
        self.user, self.code_challenge, self.code_challenge_method = user, challenge, method
        self.resource, self.expires_at = resource, time.time() + CODE_TTL

    def get_redirect_uri(self): return self.redirect_uri
    def get_scope(self): return self.scope


class Token(TokenMixin):
    """One issued access token plus the refresh token issued alongside it."""

    def __init__(self, token, client_id, user, resource):
        self.access_token, self.refresh_token = token["access_token"], token.get("refresh_token")
        self.scope, self.expires_in = token.get("scope", ""), token["expires_in"]
        self.client_id, self.user, self.resource = client_id, user, resource
        self.issued_at = time.time()
        self.access_revoked = self.refresh_revoked = False

    # TokenMixin; expiry and revocation describe the access token.
    def check_client(self, client): return self.client_id == client.get_client_id()
    def get_scope(self): return self.scope
    def get_expires_in(self): return self.expires_in
    def is_expired(self): return time.time() >= self.issued_at + self.expires_in
    def is_revoked(self): return self.access_revoked

    def is_active(self, kind):  # refresh tokens never expire, they are only revoked/rotated
        if kind == "refresh_token":
            return not self.refresh_revoked
        return not (self.is_expired() or self.access_revoked)


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.clients, self.codes, self.access, self.refresh = {}, {}, {}, {}
        self.fail_refresh, self.metadata, self.pkce_methods = False, {}, []
        self.counts, self.tokens_per_user = Counter(), Counter()

    def bump(self, key):
        with self.lock:
            self.counts[key] += 1

    def find(self, value):
        """(token, kind) for an access or refresh token string, else None."""
        if value in self.access:
            return self.access[value], "access_token"
        if value in self.refresh:
            return self.refresh[value], "refresh_token"
        return None

    def query_client(self, client_id):
        return self.clients.get(client_id) or self.fetch_metadata_document(client_id)

    def fetch_metadata_document(self, url):
        """Resolves a URL client_id as a client ID metadata document."""
        parsed = urlparse(url or "")
        if not (parsed.scheme == "https" or (parsed.scheme == "http" and parsed.hostname == "127.0.0.1")):
            return None
        self.bump("metadata_document_fetches")
        try:
            with requests.Session() as http:
                http.trust_env = False  # never route 127.0.0.1 through an env proxy
                resp = http.get(url, timeout=5, headers={"Accept": "application/json"})
            doc = resp.json() if resp.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None
        if (not isinstance(doc, dict) or doc.get("client_id") != url
                or not isinstance(doc.get("redirect_uris"), list) or not doc["redirect_uris"]):
            return None
        client = Client(url, None, dict(doc, token_endpoint_auth_method="none"))
        self.clients[url] = client  # cached for the life of the process
        return client


STORE = Store()


def save_token(token, req):
    tok = Token(token, req.client.get_client_id(), req.user, getattr(req, "resource", []))
    with STORE.lock:
        STORE.access[tok.access_token] = tok
        if tok.refresh_token:
            STORE.refresh[tok.refresh_token] = tok
        STORE.tokens_per_user[tok.user] += 1


def pick_resource(req, granted):
    """RFC 8707 at the token endpoint: may narrow, never widen, the resources."""
    asked = req.payload.datalist.get("resource", [])
    if granted and not set(asked) <= set(granted):
        raise InvalidTargetError("resource was not part of the authorization")
    return asked or granted


class StrictS256(CodeChallenge):
    # Authlib's CodeChallenge(required=True) only demands a code_verifier from public
    # clients at /token; /authorize passes without a challenge (method defaulting to
    # plain).  Here every authorization request must carry an S256 challenge.

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE code_challenge is required")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def save_authorization_code(self, code, req):
        data = req.payload.data
        STORE.codes[code] = AuthCode(code, req.client.get_client_id(), req.payload.redirect_uri,
                                     req.scope, req.user, data.get("code_challenge"),
                                     data.get("code_challenge_method"),
                                     req.payload.datalist.get("resource", []))
        STORE.bump("authorizations")

    def query_authorization_code(self, code, client):
        item = STORE.codes.get(code)
        if item and item.client_id == client.get_client_id() and time.time() < item.expires_at:
            return item

    def delete_authorization_code(self, authorization_code):
        STORE.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code):
        return authorization_code.user

    def validate_token_request(self):
        super().validate_token_request()  # the PKCE check runs as a hook in here
        self.request.resource = pick_resource(self.request, self.request.authorization_code.resource)


class RefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: a new refresh token every time

    def validate_token_request(self):
        if STORE.fail_refresh:
            raise InvalidGrantError("refresh disabled by /test/fail-refresh")
        super().validate_token_request()
        self.request.resource = pick_resource(self.request, self.request.refresh_token.resource)

    def authenticate_refresh_token(self, refresh_token):
        tok = STORE.refresh.get(refresh_token)
        if tok and tok.is_active("refresh_token"):
            return tok

    def authenticate_user(self, refresh_token):
        return refresh_token.user

    def revoke_old_credential(self, refresh_token):
        refresh_token.refresh_revoked = True  # the old access token lives on until it expires


class Registration(ClientRegistrationEndpoint):
    def authenticate_token(self, request): return "open"  # no initial access token needed
    def get_server_metadata(self): return STORE.metadata  # bounds methods, grants, scopes

    def save_client(self, client_info, client_metadata, request):
        if not client_metadata.get("redirect_uris"):
            raise InvalidClientMetadataError("redirect_uris is required")
        public = client_metadata["token_endpoint_auth_method"] == "none"
        client = Client(client_info["client_id"], None if public else client_info["client_secret"],
                        client_metadata)
        STORE.clients[client.client_id] = client
        STORE.bump("registrations")
        return client

    def create_registration_response(self, request):
        status, body, headers = super().create_registration_response(request)
        if body.get("token_endpoint_auth_method") == "none":
            # Authlib generates a secret for every client; a public one gets none.
            body.pop("client_secret", None)
            body.pop("client_secret_expires_at", None)
        client = STORE.clients[body["client_id"]]
        body.setdefault("grant_types", client.grant_types)
        body.setdefault("scope", client.scope)
        return status, body, headers


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        found = STORE.find(token_string)
        return found[0] if found else None

    def revoke_token(self, token, request):
        if request.form["token"] == token.refresh_token:
            token.refresh_revoked = True  # revoking the refresh token kills the grant
        token.access_revoked = True


class Introspection(IntrospectionEndpoint):
    # Test fixture: anyone may introspect any token, without client authentication.
    def authenticate_endpoint_client(self, request): return None
    def check_permission(self, token, client, request): return True
    def query_token(self, token_string, hint): return STORE.find(token_string)  # (Token, kind)

    def create_introspection_payload(self, found):
        if not found or not found[0].is_active(found[1]):
            return {"active": False}
        tok, kind = found
        body = {"active": True, "sub": tok.user, "client_id": tok.client_id, "scope": tok.scope,
                "token_type": "Bearer" if kind == "access_token" else "refresh_token",
                "iat": int(tok.issued_at), "iss": STORE.metadata["issuer"]}
        if kind == "access_token":
            body["exp"] = int(tok.issued_at + tok.expires_in)
        if tok.resource:
            body["aud"] = tok.resource[0] if len(tok.resource) == 1 else tok.resource
        return body


def create_app(port, token_ttl, issuer_path=""):
    prefix = "/" + issuer_path.strip("/") if issuer_path.strip("/") else ""
    issuer = f"http://127.0.0.1:{port}{prefix}"
    endpoints = {"authorization": "/authorize", "token": "/token", "registration": "/register",
                 "revocation": "/revoke", "introspection": "/introspect"}
    STORE.metadata = {"issuer": issuer, **{f"{k}_endpoint": issuer + v for k, v in endpoints.items()},
                      "response_types_supported": ["code"], "grant_types_supported": GRANT_TYPES,
                      "code_challenge_methods_supported": ["S256"],
                      "token_endpoint_auth_methods_supported": AUTH_METHODS,
                      "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
                      "introspection_endpoint_auth_methods_supported": ["none"],
                      "client_id_metadata_document_supported": True, "scopes_supported": SCOPES}
    app = Flask(__name__)
    app.config.update(OAUTH2_SCOPES_SUPPORTED=SCOPES, OAUTH2_REFRESH_TOKEN_GENERATOR=True,
                      OAUTH2_TOKEN_EXPIRES_IN={g: token_ttl for g in GRANT_TYPES})
    server = AuthorizationServer(app, query_client=STORE.query_client, save_token=save_token)
    server.register_grant(CodeGrant, [StrictS256(required=True)])
    server.register_grant(RefreshGrant)
    for endpoint in (Registration, Revocation, Introspection):
        server.register_endpoint(endpoint)

    def metadata(): return jsonify(STORE.metadata)
    app.add_url_rule("/.well-known/oauth-authorization-server" + prefix, "metadata", metadata)
    if prefix:
        app.add_url_rule(prefix + "/.well-known/oauth-authorization-server", "metadata2", metadata)

    @app.get(prefix + "/authorize")
    def authorize():
        user = request.args.get("user", "alice")  # the "logged-in" user; approval is automatic
        with STORE.lock:
            STORE.pkce_methods.append(request.args.get("code_challenge_method"))
        try:
            grant = server.get_consent_grant(end_user=user)
        except OAuth2Error as error:
            return server.handle_error_response(None, error)
        return server.create_authorization_response(grant_user=user, grant=grant)

    @app.post(prefix + "/token")
    def token():
        response = server.create_token_response()
        names = {"authorization_code": ("code_exchanges", "code_exchange_failures"),
                 "refresh_token": ("refreshes", "refresh_failures")}.get(request.form.get("grant_type"))
        if names:  # (counter on success, counter on failure)
            STORE.bump(names[response.status_code != 200])
        return response

    for path, name in (("/register", "client_registration"), ("/revoke", "revocation"),
                       ("/introspect", "introspection")):  # Authlib's endpoints do all the work
        app.add_url_rule(prefix + path, name, methods=["POST"],
                         view_func=lambda n=name: server.create_endpoint_response(n))

    @app.post("/test/revoke-user")
    def revoke_user():
        name = (request.get_json(silent=True) or {}).get("user")
        revoked = 0
        for tok in list(STORE.access.values()):
            if tok.user == name and not (tok.access_revoked and tok.refresh_revoked):
                tok.access_revoked = tok.refresh_revoked = True
                revoked += 1
        return jsonify(user=name, revoked=revoked)

    @app.post("/test/fail-refresh")
    def fail_refresh():
        STORE.fail_refresh = bool((request.get_json(silent=True) or {}).get("on"))
        return jsonify(on=STORE.fail_refresh)

    @app.get("/test/stats")
    def stats():
        with STORE.lock:
            return jsonify(**{k: STORE.counts[k] for k in STAT_NAMES}, fail_refresh=STORE.fail_refresh,
                           tokens_issued=dict(STORE.tokens_per_user),
                           code_challenge_methods=list(STORE.pkce_methods))

    return app


def main():
    parser = argparse.ArgumentParser(description="In-memory OAuth 2.1 server (test fixture)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-ttl", type=int, default=3600, help="access token lifetime (s)")
    parser.add_argument("--issuer-path", default="", help="path part of the issuer, e.g. /tenant")
    args = parser.parse_args()
    create_app(args.port, args.token_ttl, args.issuer_path).run("127.0.0.1", args.port, threaded=True)


if __name__ == "__main__":
    main()
