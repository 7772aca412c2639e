"""useradm's part: users, Basic-auth login, Personal Access Tokens, and the management JWT
check that Mender's gateway delegates to useradm (signature, expiry, subject, revocation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.sandbox.mender.store import Store, now_ts
from bridge.sandbox.mender.web import ApiError

ISSUER = "Mender"
TOKEN_LIFETIME = 604800  # jwt_exp_timeout default of useradm and deviceauth
PAT_MAX_EXPIRATION = 31536000
PAT_LIMIT = 10
PASSWORD_MIN = 8  # useradm refuses shorter passwords with 422
REALM = {"WWW-Authenticate": 'Bearer realm="ManagementJWT"'}
NO_EXPIRY = "0001-01-01T00:00:00Z"  # Go's zero time, for a PAT that never expires (inference)


def _hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def _check_password(password: str, stored: str) -> bool:
    salt_b64, _, _ = stored.partition("$")
    return hmac.compare_digest(_hash_password(password, base64.b64decode(salt_b64)), stored)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class Useradm:
    def __init__(self, store: Store, key: rsa.RSAPrivateKey) -> None:
        self.store, self.key, self.public = store, key, key.public_key()
        self._lock = threading.Lock()
        self._verified: dict[str, dict[str, Any]] = {}  # token → claims; saves an RSA verify
        self._pat_used: dict[str, float] = {}

    def ensure_user(self, email: str, password: str) -> str:
        email = email.lower()
        with self.store.tx() as tx:
            row = tx.one("SELECT id, password FROM users WHERE email = ?", email)
            if row is None:
                user_id = str(uuid.uuid4())
                tx.run("INSERT INTO users VALUES (?, ?, ?, ?)", user_id, email,
                       _hash_password(password), now_ts())
                return user_id
            if not _check_password(password, row["password"]):
                tx.run("UPDATE users SET password = ? WHERE id = ?",
                       _hash_password(password), row["id"])
            return str(row["id"])

    def create_user(self, email: str, password: str) -> str:
        """POST /users: a new user's id; 422 if the email is taken."""
        with self.store.tx() as tx:
            if tx.one("SELECT 1 FROM users WHERE email = ?", email.lower()):
                raise ApiError(422, "user with the same email already exists")
            user_id = str(uuid.uuid4())
            tx.run("INSERT INTO users VALUES (?, ?, ?, ?)", user_id, email.lower(),
                   _hash_password(password), now_ts())
        return user_id

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256")

    def _claims(self, subject: str, lifetime: int | None, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {"jti": str(uuid.uuid4()), "sub": subject, "iss": ISSUER,
                                  "iat": now, "scp": "mender.*", "mender.user": True, **extra}
        if lifetime:
            claims["exp"] = now + lifetime
        return claims

    def login(self, email: str, password: str, no_expiry: bool) -> str:
        with self.store.read() as tx:
            row = tx.one("SELECT id, password FROM users WHERE email = ?", email.lower())
        if row is None or not _check_password(password, row["password"]):
            raise ApiError(401, "unauthorized")
        return self.sign(self._claims(row["id"], None if no_expiry else TOKEN_LIFETIME))

    def device_token(self, device_id: str, auth_set_id: str) -> tuple[str, int]:
        now = int(time.time())
        expires = now + TOKEN_LIFETIME
        claims = {"jti": auth_set_id, "sub": device_id, "iss": ISSUER, "iat": now,
                  "exp": expires, "mender.device": True}
        return self.sign(claims), expires

    def verify(self, header: str | None) -> dict[str, Any]:
        """Claims of a valid management bearer token, else 401 with the realm header."""
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token or " " in token:
            raise ApiError(401, "Authorization not present in header", headers=REALM)
        claims = self._verified.get(token)
        if claims is None:
            try:
                claims = jwt.decode(token, self.public, algorithms=["RS256"], issuer=ISSUER,
                                    options={"require": ["sub", "jti"], "verify_exp": False})
            except jwt.PyJWTError:
                raise ApiError(401, "unauthorized", headers=REALM) from None
            if claims.get("mender.device") or not claims.get("mender.user") \
                    or not claims.get("sub"):
                raise ApiError(401, "unauthorized", headers=REALM)
            with self._lock:
                if len(self._verified) > 10000:
                    self._verified.clear()
                self._verified[token] = claims
        if "exp" in claims and claims["exp"] <= time.time():
            raise ApiError(401, "token expired", headers=REALM)
        if claims.get("mender.pat"):
            self._check_pat(claims["jti"])
        return claims

    def _check_pat(self, pat_id: str) -> None:
        with self.store.read() as tx:
            row = tx.one("SELECT id FROM pats WHERE id = ?", pat_id)
        if row is None:
            raise ApiError(401, "unauthorized", headers=REALM)
        now = time.time()
        # last_used is accurate to 5 minutes in useradm: no write on every request.
        if now - self._pat_used.get(pat_id, 0.0) > 300:
            self._pat_used[pat_id] = now
            with self.store.tx() as tx:
                tx.run("UPDATE pats SET last_used = ? WHERE id = ?", now_ts(), pat_id)

    def create_pat(self, user_id: str, name: str, expires_in: int) -> str:
        claims = self._claims(user_id, expires_in or None, **{"mender.pat": True})
        expiration = _iso(claims["exp"]) if "exp" in claims else NO_EXPIRY
        with self.store.tx() as tx:
            if tx.one("SELECT 1 FROM pats WHERE user_id = ? AND name = ?", user_id, name):
                raise ApiError(409, "Personal Access Token with a given name already exists")
            row = tx.one("SELECT COUNT(*) FROM pats WHERE user_id = ?", user_id)
            if row is not None and row[0] >= PAT_LIMIT:
                raise ApiError(422, "maximum number of personal access tokens reached for "
                                    "this user")
            tx.run("INSERT INTO pats VALUES (?, ?, ?, ?, ?, NULL)", claims["jti"], user_id,
                   name, now_ts(), expiration)
        return self.sign(claims)

    def list_pats(self, user_id: str) -> list[dict[str, Any]]:
        with self.store.read() as tx:
            rows = tx.all("SELECT * FROM pats WHERE user_id = ? ORDER BY created_ts", user_id)
        out = []
        for row in rows:
            item = {"id": row["id"], "name": row["name"], "created_ts": row["created_ts"],
                    "expiration_date": row["expiration_date"]}
            if row["last_used"]:
                item["last_used"] = row["last_used"]
            out.append(item)
        return out

    def delete_pat(self, user_id: str, pat_id: str) -> None:
        with self.store.tx() as tx:
            tx.run("DELETE FROM pats WHERE id = ? AND user_id = ?", pat_id, user_id)
