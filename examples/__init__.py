"""Services people would actually run: load one with ``kalshi-supervisor run --service``."""
