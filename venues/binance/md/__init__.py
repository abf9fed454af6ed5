"""binance market data: frames -> canonical records, and book sync."""
