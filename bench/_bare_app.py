"""The baseline of bench_intake: a bare FastAPI endpoint that reads and parses the same alert
JSON as AxTrace's native intake (``json.loads`` and the same native parser, so the same
validation) and writes nothing. Served by uvicorn exactly as ``axtrace intake`` serves its app.

    python bench/_bare_app.py --port 8123
"""

from __future__ import annotations

import argparse
import json

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from axtrace.intake.envelope import SourceConfig
from axtrace.intake.registry import parse


def create_app() -> FastAPI:
    app = FastAPI(title="bare")
    config = SourceConfig(site_label="site", site_map={}, default_site=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/alerts", status_code=202)
    async def deliver(request: Request) -> JSONResponse:
        envelopes = parse("native", json.loads(await request.body()), config)
        alerts = [{"id": None, "site": e.site, "key": e.key, "status": "new"} for e in envelopes]
        return JSONResponse({"id": None, "alerts": alerts}, status_code=202)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
