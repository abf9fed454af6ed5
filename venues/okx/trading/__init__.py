"""OKX v5 trading: signed REST orders (`rest`), payloads -> venue events (`parse`), the
private WebSocket (`private_ws`: orders / account / positions, and WS order entry), and
the engine's adapter over them (`adapter`). What we rely on, and as of when: ../PROTOCOL.md.
"""
