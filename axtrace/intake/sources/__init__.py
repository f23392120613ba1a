"""One parser per alert source: ``parse(body, config) -> list[AlertEnvelope]``, raising only
``ParseError``. The explicit list of sources lives in :mod:`axtrace.intake.registry`."""
