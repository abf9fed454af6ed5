"""Venue order adapters, one package per venue with the same inner layout:
`schema`/`parse` (venue-verbatim payloads and their parsers), `rest` (signed requests),
`userstream` (the venue's push channel of order updates), `adapter` (the engine's Venue).
"""
