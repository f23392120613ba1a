"""AxTrace scaled out on Prefect's distributed setup, with real PostgreSQL, Redis and workers."""
