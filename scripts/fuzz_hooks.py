"""schemathesis hooks for scripts/fuzz.sh.

Passwords are limited to 72 *bytes* of UTF-8 (bcrypt reads no more, and the service refuses
rather than truncates). JSON Schema can only say `maxLength: 72` characters, which is the same
for ASCII but not for other scripts. The documents' descriptions state the byte rule; this hook
states it to the generator, so a password of 72 characters but more than 72 bytes is never
sent as if the document allowed it (schema-invalid ones, over 72 characters, still are).
"""

import re
import uuid

import schemathesis

PASSWORD_FIELDS = ("password", "current_password", "new_password")
MAX_PASSWORD_BYTES = 72


def _too_many_bytes(value):
    return (
        isinstance(value, str)
        and len(value) <= MAX_PASSWORD_BYTES
        and len(value.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES
    )


@schemathesis.hook
def filter_body(ctx, body):
    if not isinstance(body, dict):
        return True
    return not any(_too_many_bytes(body.get(field)) for field in PASSWORD_FIELDS)


_VALID_KEY = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def before_call(ctx, case, kwargs):
    """A fresh Idempotency-Key for every request sent, in every phase.

    A key is the client's promise that requests carrying it are the same request; the generator
    would otherwise send the documented example key (or one boundary value) with every body it
    makes up, and the documented answer to a key reused with another request is a 422. Replays
    are tested by the integration suite (tests/api/idempotency.rs). Malformed keys are left
    alone: they must still be refused.
    """
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key" and isinstance(headers[name], str):
            if _VALID_KEY.match(headers[name]):
                headers[name] = str(uuid.uuid4())
