"""`python -m bridge config`: a nats-server configuration with a user per role and per consumer.

    users (passwords: random, written with the config, both 0600)
    execution      the execution host's bridges: publishes exec reports (`exec.reports.>`,
                   JetStream API), answers `meltica.ctl.execution.*` (replies to requesters only)
    dispatch       the dispatch host's ctl-serve --target dispatch: answers
                   `meltica.ctl.dispatch.*` (twice a request: ack, result), publishes the
                   remote consumers' rings `meltica.ring.consumer.*.md`
    marketdata     a sending host's md-out: publishes `meltica.ring.md.>`
    host           a receiving host's md-in and exec-in: reads `meltica.ring.>` and the
                   EXEC stream (every consumer's reports and the ACCOUNT records: a host
                   trusted with all of them)
    <consumer>     a remote consumer's bridges (ctl-expose, exec-in --consumer <consumer>):
                   publishes only `meltica.ctl.{execution,dispatch}.<consumer>`; reads only
                   its own inbox `_INBOX_<consumer>.>` (connect with that inbox prefix), its
                   ring `meltica.ring.consumer.<consumer>.md`, its exec reports
                   `exec.reports.<consumer>` through the one JetStream consumer
                   `exec-in-<consumer>` filtered on that subject, and the ACCOUNT records
                   (every consumer's) `exec.reports.=account` through the one consumer
                   `exec-acct-<consumer>` filtered on that subject (create, fetch, info,
                   delete; the filter is in the create subject, so the server pins it)

So consumer A can neither place, cancel nor query in B's name (the subject is the name
and the server refuses it; the serving bridge refuses a request whose `consumer`
differs from the subject), nor subscribe or switch trading for B, nor read B's replies,
ring or exec reports (another filter in the create subject, another consumer's name,
another inbox: all refused by the server).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import orjson

from channels.names import consumer_ring

from .ctl import PREFIX as CTL_PREFIX
from .execs import ACCOUNT_TOKEN, STREAM, SUBJECT, account_consumer_name, consumer_name
from .md import PREFIX as MD_PREFIX

ROLES = ("execution", "dispatch", "marketdata", "host")


def inbox_prefix(consumer: str) -> str:
    return f"_INBOX_{consumer}"


def _list(items) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


def permissions(role: str, stream: str = STREAM, exec_subject: str = SUBJECT) -> dict:
    """{"publish": [...], "subscribe": [...], "allow_responses": False | {"max": n}} of a user."""
    if role == "execution":
        return {"publish": [f"{exec_subject}.>", "$JS.API.>"],
                "subscribe": [f"{CTL_PREFIX}.execution.*", "_INBOX.>"], "allow_responses": {"max": 1}}
    if role == "dispatch":
        return {"publish": [f"{MD_PREFIX}.{consumer_ring('*')}"], "subscribe": [f"{CTL_PREFIX}.dispatch.*"],
                "allow_responses": {"max": 2}}
    if role == "marketdata":
        return {"publish": [f"{MD_PREFIX}.md.>"], "subscribe": [], "allow_responses": False}
    if role == "host":
        js = [f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.CONSUMER.CREATE.{stream}.>",
              f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>", f"$JS.API.CONSUMER.DELETE.{stream}.>",
              f"$JS.API.CONSUMER.INFO.{stream}.>"]
        return {"publish": js, "subscribe": [f"{MD_PREFIX}.>", "_INBOX.>"], "allow_responses": False}
    # a consumer
    js = []
    for name, token in ((consumer_name(role), role), (account_consumer_name(role), ACCOUNT_TOKEN)):
        js += [f"$JS.API.CONSUMER.CREATE.{stream}.{name}.{exec_subject}.{token}",
               *(f"$JS.API.CONSUMER.{op}.{stream}.{name}" for op in ("MSG.NEXT", "INFO", "DELETE"))]
    return {"publish": [f"{CTL_PREFIX}.execution.{role}", f"{CTL_PREFIX}.dispatch.{role}", *js],
            "subscribe": [f"{inbox_prefix(role)}.>", f"{MD_PREFIX}.{consumer_ring(role)}"],
            "allow_responses": False}


def authorization(consumers: list[str], passwords: dict[str, str]) -> str:
    """The `authorization { users: [...] }` block: one user per role and per consumer."""
    users = []
    for user in (*ROLES, *consumers):
        p = permissions(user)
        perm = [f"publish: {_list(p['publish'])}", f"subscribe: {_list(p['subscribe'])}"]
        if p["allow_responses"]:
            perm.append(f"allow_responses: {{ max: {p['allow_responses']['max']} }}")
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
