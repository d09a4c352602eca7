#!/usr/bin/env python3
"""An OIDC issuer of the benchmark's own, on 127.0.0.1: an ES256 key, its JWKS served over HTTP,
and a Cognito-shaped ID token for one tenant.

    python3 scripts/bench_jwt.py DIR            # writes DIR/jwks.json and DIR/issuer.env, then
                                                # serves DIR on a free port until killed
    python3 scripts/bench_jwt.py --token DIR TENANT_ID   # prints a token (after the above)

DIR/issuer.env holds ONBOARD_OIDC_* for `onboard serve` (issuer, JWKS URL, client id).
Only the standard library and `cryptography` (already a dependency of moto) are used.
"""
import base64
import functools
import http.server
import json
import os
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISSUER = "https://issuer.bench.invalid"
CLIENT_ID = "bench-client"
KID = "bench-1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def serve(directory: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with open(os.path.join(directory, "key.pem"), "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    numbers = key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "kid": KID, "use": "sig", "alg": "ES256",
           "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big"))}
    with open(os.path.join(directory, "jwks.json"), "w") as out:
        json.dump({"keys": [jwk]}, out)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    port = server.server_address[1]
    with open(os.path.join(directory, "issuer.env.tmp"), "w") as out:
        out.write(f"ONBOARD_OIDC_ISSUER={ISSUER}\n")
        out.write(f"ONBOARD_OIDC_JWKS_URL=http://127.0.0.1:{port}/jwks.json\n")
        out.write(f"ONBOARD_OIDC_CLIENT_IDS={CLIENT_ID}\n")
    os.rename(os.path.join(directory, "issuer.env.tmp"), os.path.join(directory, "issuer.env"))
    server.serve_forever()


def token(directory: str, tenant: str) -> str:
    with open(os.path.join(directory, "key.pem"), "rb") as source:
        key = serialization.load_pem_private_key(source.read(), password=None)
    now = int(time.time())
    header = {"alg": "ES256", "kid": KID, "typ": "JWT"}
    claims = {"iss": ISSUER, "aud": CLIENT_ID, "token_use": "id", "sub": "bench-user", "iat": now, "exp": now + 3600,
              "custom:tenantId": tenant}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--token":
        print(token(sys.argv[2], sys.argv[3]))
    elif len(sys.argv) == 2:
        serve(sys.argv[1])
    else:
        sys.exit(__doc__)
