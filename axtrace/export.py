"""Export of the ledger for auditors: one line (JSONL) or row (CSV) per trace step.

Each line carries the alert's fields with the step, so a file stands on its own; each step's
hash and its predecessor's let an auditor re-check the chain outside AxTrace.

CSV cells are formula-safe (:func:`axtrace.text.csv_cell`, OWASP's rule): a title such as
``=HYPERLINK(...)`` is written ``'=HYPERLINK(...)``, so a spreadsheet shows it instead of
running it. JSONL carries every value exactly as stored.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TextIO

from sqlmodel import Session, col, func, select

from axtrace.ledger.models import Alert, TraceEvent
from axtrace.text import csv_cell

COLUMNS = [
    "alert_id", "site", "source", "key", "severity", "title", "detector", "detector_version",
    "status", "outcome", "policy_version", "workflow_version", "flow_run_id", "seq", "step",
    "actor", "at", "detail", "prev_hash", "hash",
]


def count_steps(session: Session, since: datetime | None) -> int:
    query = select(func.count()).select_from(TraceEvent)
    if since is not None:
        query = query.where(col(TraceEvent.at) >= since)
    return int(session.exec(query).one())


def rows(session: Session, since: datetime | None, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Steps since ``since`` with their alert, in (alert, seq) order, read in batches."""
    last = (0, 0)
    while True:
        query = (select(TraceEvent, Alert).join(Alert, col(Alert.id) == col(TraceEvent.alert_id))
                 .where((col(TraceEvent.alert_id) > last[0]) | (
                     (col(TraceEvent.alert_id) == last[0]) & (col(TraceEvent.seq) > last[1])))
                 .order_by(col(TraceEvent.alert_id), col(TraceEvent.seq)).limit(batch))
        if since is not None:
            query = query.where(col(TraceEvent.at) >= since)
        page = session.exec(query).all()
        for event, alert in page:
            yield _row(event, alert)
        if len(page) < batch:
            return
        last = (page[-1][0].alert_id, page[-1][0].seq)


def _row(event: TraceEvent, alert: Alert) -> dict[str, Any]:
    return {
        "alert_id": alert.id, "site": alert.site, "source": alert.source, "key": alert.key,
        "severity": alert.severity, "title": alert.title, "detector": alert.detector,
        "detector_version": alert.detector_version, "status": alert.status,
        "outcome": alert.outcome, "policy_version": alert.policy_version,
        "workflow_version": alert.workflow_version, "flow_run_id": alert.flow_run_id,
        "seq": event.seq, "step": event.step, "actor": event.actor,
        "at": event.at.isoformat(), "detail": event.detail, "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def write(
    out: TextIO, records: Iterator[dict[str, Any]], fmt: str,
    advance: Callable[[], None] = lambda: None,
) -> int:
    """Write ``records`` as ``jsonl`` or ``csv``; returns how many were written."""
    written = 0
    writer = csv.DictWriter(out, fieldnames=COLUMNS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    for record in records:
        if writer is not None:
            cells = {**record, "detail": json.dumps(record["detail"], sort_keys=True)}
            writer.writerow({name: csv_cell(value) for name, value in cells.items()})
        else:
            out.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        written += 1
        advance()
    return written
