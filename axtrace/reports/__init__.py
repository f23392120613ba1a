"""The managers' view: per-site and cross-site figures of the ledger, consistency across sites,
and proof that every site runs the same workflow (``axtrace report``, ``axtrace verify``,
``GET /v1/report``, the ``site-report`` flow).

    model        the shapes: Scope (period and filters) in, Report out
    period       "--since 7d" and friends into a Scope
    query        SQL aggregates over the ledger (SQLite and PostgreSQL)
    figures      assembles them into a Report (definitions in its docstring)
    stats        medians, nearest-rank percentiles, rates (pure)
    consistency  spread, outlier flags, the consistency score (pure; definitions)
    text         how numbers read, shared by every format
    render       Rich table, JSON, CSV, Markdown; html: one offline page with SVG charts
    verify       drift between sites file, Prefect server and code; ledger hash chains
    service      the report of this process's ledger, for the shells
    cli, api     ``axtrace report`` / ``axtrace verify`` (Typer), ``GET /v1/report`` (FastAPI)
    publish      the site-report flow's Prefect artifacts; deploy: its deployment

Importing ``figures`` and the formats is cheap: no Prefect, no web framework.
"""
