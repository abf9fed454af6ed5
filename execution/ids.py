"""Venue client order ids, derived from (consumer_id, client_order_id).

Two consumers may use the same client_order_id, so the id sent to the venue must
name both; it must also be the same after a restart (a query by client order id
resolves an unknown outcome). Venues differ in what they accept, so there are two
forms, chosen per venue by its adapter's `client_id_form` (ids already in a store keep
their form: a venue never changes forms):

    "base64url" (Binance: `^[.A-Z:/a-z0-9_-]{1,36}$`)
        "m" + consumer_id as 8 hex digits + base64url(blake2b-144(client_order_id))
        33 characters; a collision needs a 144-bit hash collision within one consumer.
    "alnum" (OKX clOrdId: "alphanumerical, between 1-32 characters")
        "m" + consumer_id as 8 hex digits + the first 23 hex digits of the same hash
        32 characters; a collision needs a 92-bit hash collision within one consumer.

An amend a venue carries out by cancel-replace (Binance spot: any change but a quantity
decrease at the same price) puts the order's remainder in a NEW venue order, which needs
a new venue client order id: that of amend number `n` (`Order.amends`, 1 for the first)
hashes `client_order_id` + "#" + n instead, same form and length (`#` is not a character
a client order id may contain, so no original id hashes alike). The order keeps the
consumer's client_order_id; the engine and the store find it by the current venue id
(`venue_coid`) and, while the amend is in flight, by the new one (`amend_coid`); a venue
order it replaced is no longer its own (late reports of it are counted and dropped).
"""

from __future__ import annotations

import base64
import hashlib

PREFIX = "m"
LENGTH = 33            # the base64url form
ALNUM_LENGTH = 32      # the alnum form
FORMS = ("base64url", "alnum")
_HEX = frozenset("0123456789abcdef")


def venue_client_order_id(consumer_id: int, client_order_id: str, amend: int = 0, *,
                          form: str = "base64url") -> str:
    """The venue client order id of (consumer_id, client_order_id) in `form` (see FORMS);
    `amend` n > 0: that of the new venue order of the n-th amend where a venue amends by
    cancel-replace (the hashed text is `client_order_id + "#" + n`)."""
    text = client_order_id if not amend else f"{client_order_id}#{amend}"
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=18, person=b"meltica-coid").digest()
    if form == "base64url":
        return f"{PREFIX}{consumer_id:08x}" + base64.urlsafe_b64encode(digest).decode("ascii")
    if form == "alnum":
        return f"{PREFIX}{consumer_id:08x}" + digest.hex()[:ALNUM_LENGTH - 9]
    raise ValueError(f"unknown client order id form: form={form!r}; known: {', '.join(FORMS)}")


def is_ours(venue_coid: str) -> bool:
    """True when `venue_coid` has the shape of an id we derived (either form)."""
    if not venue_coid.startswith(PREFIX):
        return False
    if len(venue_coid) == LENGTH:
        return True
    return len(venue_coid) == ALNUM_LENGTH and set(venue_coid[1:]) <= _HEX
