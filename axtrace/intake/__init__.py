"""Alert intake: one parser per source, an explicit registry, signatures, durable acceptance."""
