"""Data stewards' reviews of the identity conflicts the warehouse surfaces instead of merging
(`marts.dq_member_conflicts`): an official whose scope holds the conflict's CĐCS records what checking the branch's
roster showed. The submissions page (`nop_bao_cao`) shows each conflict's latest review and records new ones.

``record_review(user, scope, f, conflict_id, decision, note="")``
    The conflict must be in the official's scope over the page's range (checked on the published warehouse, never
    taken from the caller); the latest review per conflict is kept in the app database (`conflict_reviews`, which
    survives the monthly rebuilds: `conflict_id` is a hash of the type, the pseudonymous key, the month and the CĐCS)
    and every review is in the audit log (the conflict and the decision, never the note, which may name a person).
``reviews(conflict_ids) -> {conflict_id: {decision, note, reviewed_by, reviewed_at}}``

What a review does not do: it does not change identity resolution. A conflict stays in `dq_member_conflicts` until
the branch's corrected roster removes it; "different people" tells the branch to send one, "same person" records
that the records were checked and belong to one person (a corrected name, for instance).
"""
from __future__ import annotations

import datetime as dt
import re

from pipelines.access import audit
from pipelines.access.accounts import OFFICIAL_ROLES
from pipelines.access.appdb import accounts_db

DECISIONS = ("same_person", "different_people", "roster_fixed")
NOTE_MAX = 500
# what a note must not hold (the form says so; the note is shown to officials and kept for years): an ID or social
# insurance number (9 to 12 digits, spaces or dots inside allowed) or a full date
_PERSONAL_IN_NOTE = re.compile(r"(?<!\d)\d(?:[ .]?\d){8,11}(?!\d)|\b\d{1,2}\s*[/.-]\s*\d{1,2}\s*[/.-]\s*\d{4}\b")


class ReviewError(ValueError):
    """A review that cannot be recorded; `key` is the label (Vietnamese / English) the page shows."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def can_review(user) -> bool:
    return getattr(user, "role", None) in OFFICIAL_ROLES


def record_review(user, scope, f, conflict_id: str, decision: str, note: str = "", *,
                  page: str = "nop_bao_cao") -> str:
    """Record `decision` on `conflict_id`; returns the conflict's CĐCS. Raises ReviewError (role, decision, a
    note too long or holding an ID number or a date, or a conflict outside the scope: the same answer as an unknown
    one)."""
    from pipelines.analytics import queries as q

    if not can_review(user):
        audit.record_for(user, "denied", page=page, detail={"what": "conflict_review"}, outcome="denied")
        raise ReviewError("review.error_role")
    if decision not in DECISIONS:
        raise ReviewError("review.error_decision")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ReviewError("review.error_note")
    if _PERSONAL_IN_NOTE.search(note):
        raise ReviewError("review.error_note_personal")
    cdcs = q.conflict_in_scope(scope, f, conflict_id)
    if cdcs is None:
        audit.record_for(user, "denied", page=page, detail={"what": "conflict_review", "conflict_id": conflict_id},
                         outcome="denied")
        raise ReviewError("review.error_not_found")
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    with accounts_db() as db:
        db.execute("INSERT INTO conflict_reviews (conflict_id, cdcs_code, decision, note, reviewed_by, reviewed_at) "
                   "VALUES (?,?,?,?,?,?) ON CONFLICT (conflict_id) DO UPDATE SET cdcs_code = excluded.cdcs_code, "
                   "decision = excluded.decision, note = excluded.note, reviewed_by = excluded.reviewed_by, "
                   "reviewed_at = excluded.reviewed_at",
                   [conflict_id, cdcs, decision, note or None, user.username, now])
    audit.record_for(user, "conflict_review", page=page,
                     detail={"conflict_id": conflict_id, "cdcs_code": cdcs, "decision": decision})
    return cdcs


def reviews(conflict_ids) -> dict[str, dict]:
    """The latest review of each of `conflict_ids` that has one."""
    ids = [str(c) for c in conflict_ids]
    if not ids:
        return {}
    out: dict[str, dict] = {}
    with accounts_db() as db:
        for k in range(0, len(ids), 500):
            part = ids[k:k + 500]
            for r in db.execute("SELECT conflict_id, decision, note, reviewed_by, reviewed_at FROM conflict_reviews "
                                f"WHERE conflict_id IN ({','.join('?' * len(part))})", part).fetchall():
                out[r[0]] = {"decision": r[1], "note": r[2], "reviewed_by": r[3], "reviewed_at": r[4]}
    return out
