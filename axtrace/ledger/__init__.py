"""The ledger: alerts (occurrences), their append-only traces, and the dispatch outbox."""
