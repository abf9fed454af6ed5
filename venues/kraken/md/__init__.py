"""kraken market data: frames -> canonical records, and book sync."""
