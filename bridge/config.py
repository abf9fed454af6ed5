"""`python -m bridge config`: a nats-server configuration with a user per role and per consumer.

    users (passwords: random, written with the config, both 0600)
    execution      the execution host's bridge: publishes exec reports (JetStream API),
                   answers `meltica.ctl.execution.*` (replies to requesters only)
    marketdata     a sending host's md-out: publishes `meltica.ring.>`
    host           a receiving host's md-in and exec-in: reads `meltica.ring.>` and the
                   EXEC stream (every consumer's reports: one per host, trusted as such)
    <consumer>     a remote consumer's ctl-expose: publishes only `meltica.ctl.execution.<consumer>`,
                   reads only its own inbox `_INBOX_<consumer>.>` (connect with that inbox prefix)

So consumer A can neither place, cancel nor query in B's name (the subject is the name
and the server refuses it; the execution host's bridge refuses a request whose
`consumer` differs from the subject), nor read B's replies.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import orjson

from .ctl import PREFIX as CTL_PREFIX
from .md import PREFIX as MD_PREFIX

ROLES = ("execution", "marketdata", "host")


def inbox_prefix(consumer: str) -> str:
    return f"_INBOX_{consumer}"


def _list(items) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


def permissions(role: str, stream: str = "EXEC", exec_subject: str = "exec.reports") -> dict:
    """{"publish": [...], "subscribe": [...], "allow_responses": bool} of a user."""
    if role == "execution":
        return {"publish": [exec_subject, "$JS.API.>"], "subscribe": [f"{CTL_PREFIX}.execution.*", "_INBOX.>"],
                "allow_responses": True}
    if role == "marketdata":
        return {"publish": [f"{MD_PREFIX}.>"], "subscribe": [], "allow_responses": False}
    if role == "host":
        js = [f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.CONSUMER.CREATE.{stream}.>",
              f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>", f"$JS.API.CONSUMER.DELETE.{stream}.>",
              f"$JS.API.CONSUMER.INFO.{stream}.>"]
        return {"publish": js, "subscribe": [f"{MD_PREFIX}.>", "_INBOX.>"], "allow_responses": False}
    # a consumer
    return {"publish": [f"{CTL_PREFIX}.execution.{role}"], "subscribe": [f"{inbox_prefix(role)}.>"],
            "allow_responses": False}


def authorization(consumers: list[str], passwords: dict[str, str]) -> str:
    """The `authorization { users: [...] }` block: one user per role and per consumer."""
    users = []
    for user in (*ROLES, *consumers):
        p = permissions(user)
        perm = [f"publish: {_list(p['publish'])}", f"subscribe: {_list(p['subscribe'])}"]
        if p["allow_responses"]:
            perm.append("allow_responses: true")
        users.append(f'    {{ user: "{user}", password: "{passwords[user]}", '
                     f'permissions: {{ {", ".join(perm)} }} }}')
    return "\n".join(["authorization {", "  users: [", ",\n".join(users), "  ]", "}"]) + "\n"


def server_config(consumers: list[str], passwords: dict[str, str], *, listen: str = "127.0.0.1:4222",
                  store: str = "nats-store", tls: dict | None = None) -> str:
    text = [f'listen: "{listen}"', f'jetstream {{ store_dir: "{store}" }}', "max_payload: 8MB",
            authorization(consumers, passwords).rstrip("\n")]
    if tls:
        text += ["tls {", f'  cert_file: "{tls["cert"]}"', f'  key_file: "{tls["key"]}"'] + \
                ([f'  ca_file: "{tls["ca"]}"', "  verify: true"] if tls.get("ca") else []) + ["}"]
    return "\n".join(text) + "\n"


def write(out: str | os.PathLike, consumers: list[str], **kw) -> dict[str, str]:
    """Write `out` (the server config) and `out`.passwords.json, both 0600; return the passwords."""
    for c in consumers:
        if c in ROLES or not c.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"consumer name must be [A-Za-z0-9_-] and not a role name: {c!r}")
    passwords = {u: secrets.token_hex(16) for u in (*ROLES, *consumers)}
    out = Path(out)
    for path, data in ((out, server_config(consumers, passwords, **kw).encode()),
                       (out.with_name(out.name + ".passwords.json"), orjson.dumps(passwords, option=orjson.OPT_INDENT_2))):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return passwords
