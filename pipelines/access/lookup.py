"""Person-level lookups: a member's own record, officials' member search, correction requests.

The only door onto the warehouse's `restricted` schema (CCCD, names, birth dates, salaries). Every function
takes the caller's `User`, resolves their scope (`pipelines.access.scope`) and writes an audit record.
Plain Python: the Streamlit page (`dashboards/app_pages/tra_cuu.py`) only renders what comes back.

Tables read (columns are discovered, so a missing optional column degrades gracefully):
- `restricted.member_pii`: member_key, member_code, full_name, name_search (accent-folded), cccd, birth_date
  [, cdcs_code: the current CĐCS, dim_member's; status and age_band, dim_member's: a lookup reads them from here]
- `restricted.member_search` / `member_search_tokens`: the search by name (see `_search_by_name_index`)
- `marts.dim_member`: member_key [, member_code, cdcs_code (current), join_date, status, leave_date]: read only for
  what an older version's member_pii lacks (it has no lookup index since the build stopped making one)
- `marts.fct_member_events`, `marts.fct_service_deliveries`, `marts.fct_activity_participation` (member_key,
  cdcs_code, dates), `marts.fct_dues_monthly` (period × CĐCS), and a per-member monthly table in
  `restricted` when there is one (`member_monthly` / `member_dues_monthly`: member_key, period,
  insurance_salary or dues_due)
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from pipelines.access import audit
from pipelines.access.accounts import OFFICIAL_ROLES, User
from pipelines.access.appdb import accounts_db
from pipelines.access.scope import Scope, ScopeError, scope_for
from pipelines.access.warehouse import (connect_full, latest_period, lookup_hash_ok, name_token_count,
                                        table_columns)
from pipelines.warehouse.serving import lookup_exact, lookup_match

CCCD_RE = re.compile(r"^\d{12}$")
MEMBER_KEY_RE = re.compile(r"^[0-9a-f]{16,64}$")
# Roles that may see a full CCCD and birth date: the CĐCS official keeps their own members' records.
FULL_ID_ROLES = ("cdcs_official",)
SEARCH_ROLES = OFFICIAL_ROLES
CORRECTION_FIELDS = ("full_name", "birth_date", "gender", "ethnicity", "cccd", "unit", "join_date", "dues",
                     "services", "activities", "other")


class LookupError_(PermissionError):
    """Refused lookup (message bilingual, safe to show, says nothing about whether the person exists)."""


NOT_FOUND = "Không tìm thấy hoặc ngoài phạm vi được xem / not found or outside your scope"


def fold(text: str | None) -> str:
    """Accent-insensitive form of a Vietnamese name: lower case, no tone or vowel marks, đ -> d."""
    if not text:
        return ""
    t = unicodedata.normalize("NFD", str(text).replace("Đ", "D").replace("đ", "d"))
    t = "".join(ch for ch in t if unicodedata.category(ch) != "Mn")
    return re.sub(r"\s+", " ", t).strip().lower()


def mask_cccd(cccd: str | None) -> str | None:
    """`001*****1234`: the province-of-birth prefix and the last four digits."""
    if not cccd:
        return None
    s = str(cccd)
    if len(s) < 8:
        return "*" * len(s)
    return s[:3] + "*" * (len(s) - 7) + s[-4:]


def mask_for(user: User, cccd: str | None) -> str | None:
    return cccd if user.role in FULL_ID_ROLES else mask_cccd(cccd)


def _birth_for(user: User, birth, own: bool = False):
    if birth is None:
        return None
    if own or user.role in FULL_ID_ROLES:
        return birth
    return getattr(birth, "year", str(birth)[:4])


# ---------------------------------------------------------------- helpers

def _cols(con, schema: str, table: str) -> set[str]:
    return set(table_columns(con, schema, table))


def _current_unit_sql(con, key_filter: str = "TRUE") -> tuple[str, str]:
    """A CTE body `member_key, cdcs_code` giving the current CĐCS of the members that pass `key_filter` (SQL on
    `member_key`, e.g. `member_key = ?`: only those members are aggregated), and its source description."""
    dm = _cols(con, "marts", "dim_member")
    pii = _cols(con, "restricted", "member_pii")
    # member_pii's cdcs_code is dim_member's (the same macro on the same states), read by member_pii's key index
    # (dim_member has none since a build no longer makes it); a version without it falls back to dim_member
    if {"member_key", "cdcs_code"} <= pii:
        return f"SELECT member_key, cdcs_code FROM restricted.member_pii WHERE ({key_filter})", "member_pii"
    if {"member_key", "cdcs_code"} <= dm:
        current = "is_current AND " if "is_current" in dm else ""
        return (f"SELECT member_key, any_value(cdcs_code) AS cdcs_code FROM marts.dim_member "
                f"WHERE {current}({key_filter}) GROUP BY 1"), "dim_member"
    ev = _cols(con, "marts", "fct_member_events")
    if {"member_key", "cdcs_code", "event_date"} <= ev:
        return ("SELECT member_key, arg_max(cdcs_code, event_date) AS cdcs_code FROM marts.fct_member_events "
                f"WHERE ({key_filter}) GROUP BY 1"), "events"
    raise LookupError_("Kho dữ liệu thiếu bảng đoàn viên / the warehouse has no member tables")


def _current_cdcs(con, member_key: str) -> tuple | None:
    """(current CĐCS,) of one member, or None."""
    cur_sql, _ = _current_unit_sql(con, lookup_match("member_key"))
    return con.execute(f"SELECT cdcs_code FROM ({cur_sql})", [member_key]).fetchone()


def _official_scope(user: User, con) -> Scope:
    if user.role not in SEARCH_ROLES:
        raise LookupError_("Vai trò này không được tra cứu đoàn viên / this role may not look up members")
    s = scope_for(user, latest_period(con))
    if s.kind not in ("national", "units"):
        raise LookupError_(NOT_FOUND)
    return s


@dataclass
class MemberHit:
    member_key: str
    member_code: str | None
    full_name: str | None
    cccd: str | None        # masked unless the role needs it
    birth: object           # date or year
    cdcs_code: str | None


# ---------------------------------------------------------------- official search

SEARCH = ("restricted", "member_search")
SEARCH_TOKENS = ("restricted", "member_search_tokens")
_SEARCH_COLS = ("member_key", "member_code", "full_name", "cccd", "birth_date", "cdcs_code")


@dataclass(frozen=True)
class NameQuery:
    """What a name search asks for: every word of `whole` is a word of the name, and (when `prefix` is set) some
    word of the name starts with `prefix`. Built by `name_query`; matched by `_name_match_sql` (both the index
    and the plain scan use that one predicate)."""
    whole: tuple[str, ...]
    prefix: str | None

    @property
    def empty(self) -> bool:
        return not self.whole and not self.prefix


def name_query(query: str | None) -> NameQuery:
    """The rule of the search by name, for a search box that answers while the official types: every typed word
    but the last is a whole word of the (accent/case-folded) name; the last typed word is the beginning of a
    word of the name (a whole word too: "hung" finds "Hùng"; "hu" finds "Hùng" and "Huy"); any order. A last
    word that starts an earlier typed word adds nothing (that word is in the name) and is dropped."""
    folded = fold(query)
    words = folded.split(" ") if folded else []
    if not words:
        return NameQuery((), None)
    *before, last = words
    whole = tuple(dict.fromkeys(before))
    if any(w.startswith(last) for w in whole):
        return NameQuery(whole, None)
    return NameQuery(whole, last)


def _name_match_sql(col: str, q: NameQuery) -> tuple[str, list]:
    """The SQL condition (with its parameters) that the space-separated folded name `col` satisfies `q`: each
    whole word as ` word ` inside ` name `, the prefix as ` prefix` inside ` name` (a plain substring test, no
    list per row). The one definition of a match, for the index and the scan."""
    conds, params = [], []
    for w in q.whole:
        conds.append(f"contains(' ' || {col} || ' ', ?)")
        params.append(f" {w} ")
    if q.prefix:
        conds.append(f"contains(' ' || {col}, ?)")
        params.append(f" {q.prefix}")
    return (" AND ".join(conds) or "FALSE"), params


def _prefix_range_sql(col: str, prefix: str) -> tuple[str, list]:
    """`col` starts with `prefix`, as a range of the sorted tokens table (zone maps skip the other row groups):
    `col >= prefix AND col < end`, end the least string above every string starting with `prefix` in code-point
    order (DuckDB's VARCHAR order: UTF-8 bytes)."""
    p = prefix
    while p:
        c = ord(p[-1]) + 1
        if c == 0xD800:  # no surrogates in UTF-8: the next encodable code point
            c = 0xE000
        if c <= 0x10FFFF:
            return f"{col} >= ? AND {col} < ?", [prefix, p[:-1] + chr(c)]
        p = p[:-1]
    return f"{col} >= ?", [prefix]  # a prefix of U+10FFFF only: no string above its range


def _has_name_index(con) -> bool:
    return ({"token", "name_rank", "name_search", "cdcs_code"} <= _cols(con, *SEARCH_TOKENS)
            and {"name_rank", *_SEARCH_COLS} <= _cols(con, *SEARCH))


_PROBE_RANKS = 16_384  # the first people in name order tried before a long list of postings
# member_search numbers the people 1..N times this when built from nothing, and places later ones between their
# neighbours (dbt macro member_search_gap, dbt_project/macros/member_search.sql): the first _PROBE_RANKS people of
# the last numbering have ranks up to _PROBE_RANKS * NAME_RANK_GAP, people placed since among them too
NAME_RANK_GAP = 2 ** 32


def _search_by_name_index(con, q: NameQuery, scope: Scope, limit: int) -> list[tuple]:
    """The first `limit` people, in the order (full_name, member_key), whose name matches `q` and whose current
    CĐCS is in `scope`, as rows of `_SEARCH_COLS`: from the dbt models member_search_tokens (the postings of one
    word only, or of the prefix's range of words, every word then checked on their name_search, the scope on their
    cdcs_code) and member_search (the records of the smallest name_ranks, neighbouring rows).

    The postings read: those of the rarest whole word (counts kept per version), unless the prefix's range has
    fewer (counted only up to that word's count, so the count never reads more than the word's postings would);
    a query of one word reads its prefix's range. When that is a long read, the first `_PROBE_RANKS` people in name
    order are tried first (a frequent match, e.g. "ng", has its `limit` answers there)."""
    counts = {w: name_token_count(con, w) for w in q.whole}
    rarest = min(q.whole, key=lambda w: (counts[w], w)) if q.whole else None
    if rarest is not None and counts[rarest] == 0:
        return []
    drive, dparams, n = "t.token = ?", [rarest], counts.get(rarest)
    if q.prefix:
        prange, pparams = _prefix_range_sql("t.token", q.prefix)
        if rarest is None:
            drive, dparams = prange, pparams
        else:
            cap = counts[rarest]
            n = con.execute(f"SELECT count(*) FROM (SELECT 1 FROM restricted.member_search_tokens t WHERE {prange} "
                            "LIMIT ?)", [*pparams, cap]).fetchone()[0]
            if n == 0:
                return []
            if n < cap:
                drive, dparams = prange, pparams
            else:
                n = cap
    ranks = None
    if n is None or n > _PROBE_RANKS:
        # many postings to read (a common word, a short prefix such as "ng"): first the first _PROBE_RANKS people
        # in name order (one row group of member_search, and the people placed among them since it was numbered,
        # in the few row groups each later build appended). When `limit` of them match, they are the answer (no
        # smaller rank is left unread); else the postings as below
        match, mparams = _name_match_sql("s.name_search", q)
        pred, sparams = scope.predicate("s", columns={"cdcs_code"})
        ranks = [r[0] for r in con.execute(
            f"SELECT s.name_rank FROM restricted.member_search s WHERE s.name_rank <= ? AND {match} AND ({pred}) "
            "ORDER BY s.name_rank LIMIT ?", [_PROBE_RANKS * NAME_RANK_GAP, *mparams, *sparams, int(limit)]).fetchall()]
        if len(ranks) < limit:
            ranks = None
    if ranks is None:
        match, mparams = _name_match_sql("t.name_search", q)
        pred, sparams = scope.predicate("t", columns={"cdcs_code"})
        # the postings of one word are sorted by name_rank: DuckDB's top-N skips the row groups past the first
        # `limit` (a DISTINCT would read them all). A prefix's range holds a person once per word starting with it
        # ("hu": Hữu, Hùng): the first `n` postings are deduplicated, and more are read when that leaves fewer
        # than `limit` people while postings remain (they are sorted: no smaller rank is left unread)
        sql = (f"SELECT t.name_rank FROM restricted.member_search_tokens t WHERE {drive} AND {match} AND ({pred}) "
               "ORDER BY t.name_rank LIMIT ?")
        n = int(limit)
        while True:
            got = [r[0] for r in con.execute(sql, [*dparams, *mparams, *sparams, n]).fetchall()]
            ranks = list(dict.fromkeys(got))[:limit]
            if len(got) < n or len(ranks) >= limit:
                break
            n *= 4
    if not ranks:
        return []
    # their records: an ART index point query per rank (`ix_member_search_name_rank`, made at publish time by
    # pipelines.warehouse.build.set_lookup_indexes); neighbouring ranks share their vectors
    pred, pparams = scope.predicate("s", columns={"cdcs_code"})  # again on the records returned
    return con.execute(
        f"SELECT {', '.join('s.' + c for c in _SEARCH_COLS)} FROM restricted.member_search s "
        f"WHERE s.name_rank IN ({', '.join('?' * len(ranks))}) AND ({pred}) ORDER BY s.name_rank",
        [*ranks, *pparams]).fetchall()


def search_members(user: User, query: str, *, page: str = "tra_cuu", limit: int = 50) -> list[MemberHit]:
    """Members in the user's scope matching a name, a CCCD (12 digits) or a member code.

    A name matches when every word of the query but the last is a word of the person's name and the last word is
    the beginning of a word of the name (`name_query`), accent- and case-insensitive and in any order: the full
    name, the given name alone, "họ + tên" ("Nguyễn An" finds "Nguyễn Văn An"), or a name being typed ("nguyen
    van hu" finds "Nguyễn Văn Hùng" and "Nguyễn Văn Huy"). Results are listed by full name (then member_key), at
    most `limit`. Answered from the name index (dbt models
    `restricted.member_search_tokens` / `member_search`) when the published version has it, else by a scan of
    `member_pii.name_search` with the same rule."""
    q = (query or "").strip()
    if len(q) < 2:
        raise LookupError_("Nhập ít nhất 2 ký tự / type at least 2 characters")
    if len(q) > 100:
        raise LookupError_("Chuỗi tìm kiếm quá dài / search text too long")
    with connect_full() as con:
        try:
            scope = _official_scope(user, con)
        except LookupError_:
            audit.record_for(user, "denied", page=page, detail={"what": "search_members"}, outcome="denied")
            raise
        pii = _cols(con, "restricted", "member_pii")
        rows = None
        exact, eparams = "TRUE", []
        if CCCD_RE.match(q):
            cond, params, how = lookup_match("cccd", "p"), [q], "cccd"
        elif "member_code" in pii and re.fullmatch(r"[A-Za-z0-9._-]{4,40}", q) and any(ch.isdigit() for ch in q):
            # codes are upper-cased at ingestion: the member_code index (a hash) answers, the exact equality
            # follows on the few hits
            cond, params, how = (lookup_match("member_code", "p", hash_ok=lookup_hash_ok(con)), [q.upper()],
                                 "member_code")
            exact, eparams = lookup_exact("member_code", "h"), [q.upper()]
        else:
            how, nq = "name", name_query(q)
            if nq.empty:
                cond, params = "FALSE", []
            elif _has_name_index(con):
                rows = _search_by_name_index(con, nq, scope, limit)
            else:
                col = "p.name_search" if "name_search" in pii else \
                    "lower(strip_accents(replace(replace(p.full_name, 'Đ', 'D'), 'đ', 'd')))"
                cond, params = _name_match_sql(col, nq)
        if rows is None:
            # the matching people first (materialised: one scan of member_pii, not one per use), then their
            # current unit: member_pii's own cdcs_code (dim_member's, by construction); an older version without it
            # joins the current unit of those people only. Not a join to dim_member when member_pii has it: the
            # hits' keys as text against dim_member's index on the key as a UUID is a scan of 12 M keys (~170 ms)
            mc = "p.member_code" if "member_code" in pii else "NULL"
            bd = "p.birth_date" if "birth_date" in pii else "NULL"
            hits = (f"WITH hits AS MATERIALIZED (SELECT p.member_key, {mc} AS member_code, p.full_name, p.cccd, "
                    f"{bd} AS birth_date{', p.cdcs_code' if 'cdcs_code' in pii else ''} "
                    f"FROM restricted.member_pii p WHERE {cond})")
            if "cdcs_code" in pii:
                pred, pparams = scope.predicate("h", columns={"cdcs_code"})
                sql = (f"{hits} SELECT h.member_key, h.member_code, h.full_name, h.cccd, h.birth_date, h.cdcs_code "
                       f"FROM hits h WHERE ({pred}) AND {exact} ORDER BY h.full_name, h.member_key LIMIT ?")
            else:
                cur_sql, _ = _current_unit_sql(con, "member_key IN (SELECT member_key FROM hits)")
                pred, pparams = scope.predicate("cur", columns={"cdcs_code"})
                sql = (f"{hits}, cur AS ({cur_sql}) "
                       f"SELECT h.member_key, h.member_code, h.full_name, h.cccd, h.birth_date, cur.cdcs_code "
                       f"FROM hits h JOIN cur ON cur.member_key = h.member_key "
                       f"WHERE ({pred}) AND {exact} ORDER BY h.full_name, h.member_key LIMIT ?")
            rows = con.execute(sql, [*params, *pparams, *eparams, int(limit)]).fetchall()
    hits = [MemberHit(member_key=r[0], member_code=r[1], full_name=r[2], cccd=mask_for(user, r[3]),
                      birth=_birth_for(user, r[4]), cdcs_code=r[5]) for r in rows]
    audit.record_for(user, "search_members", page=page, rows=len(hits),
                     detail={"by": how, "query": q if how != "name" else fold(q), "scope": scope.key})
    return hits


# ---------------------------------------------------------------- one member's record

def _history(con, member_key: str, cdcs_filter: Scope | None) -> dict:
    out: dict[str, list[dict]] = {}
    specs = {
        "events": ("fct_member_events", ["event_date", "period", "event_type", "cdcs_code", "leave_reason_code",
                                          "other_cdcs_code"], "event_date"),
        "services": ("fct_service_deliveries", ["service_date", "period", "program_code", "program",
                                                "amount", "cdcs_code"], "service_date"),
        "activities": ("fct_activity_participation", ["activity_date", "period", "activity_type",
                                                      "activity_type_code", "activity_name", "cdcs_code"],
                       "activity_date"),
    }
    for name, (table, wanted, order) in specs.items():
        cols = _cols(con, "marts", table)
        if "member_key" not in cols:
            out[name] = []
            continue
        sel = [c for c in wanted if c in cols]
        where, params = "member_key = ?", [member_key]
        if cdcs_filter is not None and "cdcs_code" in cols:
            pred, pp = cdcs_filter.predicate("", columns={"cdcs_code"})
            where += f" AND ({pred})"
            params += pp
        ordering = order if order in cols else (sel[0] if sel else "1")
        rows = con.execute(f"SELECT {', '.join(sel)} FROM marts.{table} WHERE {where} ORDER BY {ordering}",
                           params).fetchall()
        out[name] = [dict(zip(sel, r)) for r in rows]
    out["dues"] = _dues(con, member_key, cdcs_filter)
    return out


def _dues_rules() -> list[tuple[dt.date, dt.date | None, float, int, float]]:
    import csv

    from pipelines import config
    rules = []
    with open(config.REFERENCE_DIR / "dues_rules.csv", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            rules.append((dt.date.fromisoformat(r["valid_from"]),
                          dt.date.fromisoformat(r["valid_to"]) if r.get("valid_to") else None,
                          float(r["rate"]), int(float(r["base_salary"])), float(r["cap_multiplier"])))
    return rules


def dues_due(period: dt.date, insurance_salary: int | None) -> int | None:
    """CONTRACTS §1: min(round(rate × insurance_salary), base_salary × cap_multiplier) for the month."""
    if insurance_salary is None:
        return None
    for start, end, rate, base, mult in _dues_rules():
        if start <= period and (end is None or period <= end):
            return int(min(round(rate * insurance_salary), round(base * mult)))
    return None


def _dues(con, member_key: str, cdcs_filter: Scope | None) -> list[dict]:
    """Per month: the member's dues due (from their insurance salary) and their CĐCS's collection that month."""
    table = None
    for t in ("member_history", "member_dues_monthly", "member_monthly", "membership_member_monthly"):
        cols = _cols(con, "restricted", t)
        if {"member_key", "period"} <= cols:
            table = t
            break
    if table is None:
        return []
    sel = [c for c in ("period", "cdcs_code", "insurance_salary", "dues_due", "dues_paid") if c in cols]
    where, params = "member_key = ?", [member_key]
    if cdcs_filter is not None and "cdcs_code" in cols:
        pred, pp = cdcs_filter.predicate("", columns={"cdcs_code"})
        where += f" AND ({pred})"
        params += pp
    rows = [dict(zip(sel, r)) for r in con.execute(
        f"SELECT {', '.join(sel)} FROM restricted.{table} WHERE {where} ORDER BY period", params).fetchall()]
    fdm = _cols(con, "marts", "fct_dues_monthly")
    rates = {}
    if {"period", "cdcs_code", "dues_expected", "dues_collected"} <= fdm and rows and "cdcs_code" in sel:
        for p, c, e, col in con.execute(
                "SELECT period, cdcs_code, dues_expected, dues_collected FROM marts.fct_dues_monthly "
                "WHERE cdcs_code IN (SELECT DISTINCT cdcs_code FROM restricted." + table + " WHERE member_key = ?)",
                [member_key]).fetchall():
            rates[(p, c)] = (e, col)
    out = []
    for r in rows:
        p = r["period"].date() if isinstance(r["period"], dt.datetime) else r["period"]
        due = r.get("dues_due")
        if due is None:
            due = dues_due(p, r.get("insurance_salary"))
        e, col = rates.get((r["period"], r.get("cdcs_code")), (None, None))
        paid = r.get("dues_paid")
        status = None
        if paid is None and e:
            status = "paid" if col is not None and col >= e else ("partial" if col else "unpaid")
        out.append({"period": p, "cdcs_code": r.get("cdcs_code"), "dues_due": due, "dues_paid": paid,
                    "cdcs_collection_rate": (round(col / e, 3) if e and col is not None else None),
                    "status": status or ("paid" if paid is not None and due is not None and paid >= due else None)})
    return out


def _resolve_member_key(con, member_key: str | None, member_code: str | None) -> str | None:
    if member_key:
        return member_key
    if member_code:
        for schema, table in (("restricted", "member_pii"), ("marts", "dim_member")):
            cols = _cols(con, schema, table)
            if {"member_key", "member_code"} <= cols:
                # the member_code index (a hash) answers the first filter; the exact equality follows
                r = con.execute(f"WITH h AS MATERIALIZED (SELECT member_key, member_code FROM {schema}.{table} "
                                f"WHERE {lookup_match('member_code', hash_ok=lookup_hash_ok(con))}) "
                                f"SELECT member_key FROM h WHERE {lookup_exact('member_code')} LIMIT 1",
                                [member_code, member_code]).fetchone()
                if r:
                    return r[0]
    return None


def _member_record(con, user: User, member_key: str, *, own: bool, history_scope: Scope | None) -> dict | None:
    pii = _cols(con, "restricted", "member_pii")
    dm = _cols(con, "marts", "dim_member")
    # one read of member_pii by its key index: the record, its current CĐCS and its standing (dim_member's columns
    # there); dim_member is read only for what an older version's member_pii lacks
    sel_p = [c for c in ("member_code", "full_name", "cccd", "birth_date", "gender", "join_date", "cdcs_code",
                         "status", "age_band") if c in pii]
    r = con.execute(f"SELECT {', '.join('p.' + c for c in sel_p)} FROM restricted.member_pii p "
                    f"WHERE {lookup_match('member_key', 'p')}", [member_key]).fetchone()
    if r is None:
        return None
    rec = dict(zip(sel_p, r))
    if "cdcs_code" not in rec:
        cur = _current_cdcs(con, member_key)
        rec["cdcs_code"] = cur[0] if cur else None
    extra = [c for c in ("member_code", "join_date", "status", "leave_date", "gender", "ethnicity_code",
                         "age_band") if c in dm and c not in rec]
    if "join_date" not in rec and "join_date" not in extra and "first_join_date" in dm:
        extra.append("first_join_date AS join_date")
    if extra:
        e = con.execute(f"SELECT {', '.join(extra)} FROM marts.dim_member "
                        f"WHERE {lookup_match('member_key')} LIMIT 1", [member_key]).fetchone()
        if e:
            rec.update(dict(zip([x.split(" AS ")[-1] for x in extra], e)))
    if rec.get("cdcs_code"):
        du = _cols(con, "marts", "dim_union_unit")
        if {"unit_code", "unit_name"} <= du:
            order = "valid_from DESC" if "valid_from" in du else "1"
            n = con.execute(f"SELECT unit_name FROM marts.dim_union_unit WHERE unit_code = ? ORDER BY {order} LIMIT 1",
                            [rec["cdcs_code"]]).fetchone()
            rec["cdcs_name"] = n[0] if n else None
    rec["member_key"] = member_key
    rec["cccd"] = mask_cccd(rec.get("cccd")) if own else mask_for(user, rec.get("cccd"))
    rec["birth_date"] = _birth_for(user, rec.get("birth_date"), own=own)
    rec["history"] = _history(con, member_key, history_scope)
    return rec


def member_detail(user: User, member_key: str, *, page: str = "tra_cuu") -> dict:
    """One member's record for an official whose scope holds the member's current CĐCS (audited)."""
    if not isinstance(member_key, str) or not MEMBER_KEY_RE.match(member_key):
        audit.record_for(user, "denied", page=page, detail={"what": "member_detail", "bad_key": True},
                         outcome="denied")
        raise LookupError_(NOT_FOUND)
    with connect_full() as con:
        try:
            scope = _official_scope(user, con)
        except LookupError_:
            audit.record_for(user, "denied", page=page, member_key=member_key, detail={"what": "member_detail"},
                             outcome="denied")
            raise
        cur = _current_cdcs(con, member_key)
        if cur is None or not scope.allows_cdcs(cur[0]):
            audit.record_for(user, "denied", page=page, member_key=member_key, detail={"what": "member_detail"},
                             outcome="denied")
            raise LookupError_(NOT_FOUND)
        rec = _member_record(con, user, member_key, own=False,
                             history_scope=None if scope.is_national else scope)
    if rec is None:
        raise LookupError_(NOT_FOUND)
    audit.record_for(user, "view_member", page=page, member_key=member_key,
                     detail={"scope": scope.key, "cdcs_code": rec.get("cdcs_code")})
    return rec


def own_record(user: User, *, page: str = "tra_cuu") -> dict:
    """A member's own record (member code, unit, join date, history, dues, services, activities)."""
    if user.role != "member":
        raise LookupError_("Chỉ tài khoản đoàn viên / member accounts only")
    with connect_full() as con:
        key = _resolve_member_key(con, user.member_key, user.member_code)
        rec = _member_record(con, user, key, own=True, history_scope=None) if key else None
    if rec is None:
        audit.record_for(user, "view_own_record", page=page, outcome="not_found")
        raise LookupError_("Chưa có hồ sơ trong kho dữ liệu / no record in the warehouse yet")
    audit.record_for(user, "view_own_record", page=page, member_key=key)
    return rec


# ---------------------------------------------------------------- correction requests

def submit_correction(user: User, field: str, message: str, *, page: str = "tra_cuu") -> int:
    if user.role != "member":
        raise LookupError_("Chỉ đoàn viên gửi yêu cầu đính chính / only members send correction requests")
    if field not in CORRECTION_FIELDS:
        raise LookupError_("Mục không hợp lệ / unknown field")
    message = (message or "").strip()
    if not (3 <= len(message) <= 2000):
        raise LookupError_("Nội dung 3–2000 ký tự / message must have 3–2000 characters")
    with connect_full() as con:
        key = _resolve_member_key(con, user.member_key, user.member_code)
        if not key:
            raise LookupError_("Chưa có hồ sơ trong kho dữ liệu / no record in the warehouse yet")
        cur = _current_cdcs(con, key)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    with accounts_db() as db:
        c = db.execute("INSERT INTO correction_requests (member_key, cdcs_code, requested_by, field, message, "
                       "status, created_at) VALUES (?,?,?,?,?,'open',?)",
                       [key, cur[0] if cur else None, user.username, field, message, now])
        rid = c.lastrowid
    audit.record_for(user, "correction_request", page=page, member_key=key, detail={"id": rid, "field": field})
    return rid


def list_corrections(user: User, *, status: str | None = None) -> list[dict]:
    """A member's own requests, or the requests about members in an official's scope."""
    with accounts_db() as db:
        rows = [dict(r) for r in db.execute("SELECT * FROM correction_requests ORDER BY id DESC").fetchall()]
    if status:
        rows = [r for r in rows if r["status"] == status]
    if user.role == "member":
        return [r for r in rows if r["requested_by"] == user.username]
    if user.role not in SEARCH_ROLES:
        return []
    with connect_full() as con:
        scope = scope_for(user, latest_period(con))
    return [r for r in rows if scope.allows_cdcs(r["cdcs_code"])]


def resolve_correction(user: User, request_id: int, resolution: str, *, status: str = "resolved",
                       page: str = "tra_cuu") -> None:
    if status not in ("resolved", "rejected"):
        raise LookupError_("Trạng thái không hợp lệ / bad status")
    visible = {r["id"]: r for r in list_corrections(user)} if user.role in SEARCH_ROLES else {}
    if request_id not in visible:
        audit.record_for(user, "denied", page=page, detail={"what": "resolve_correction", "id": request_id},
                         outcome="denied")
        raise ScopeError(NOT_FOUND)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    with accounts_db() as db:
        db.execute("UPDATE correction_requests SET status = ?, resolved_by = ?, resolved_at = ?, resolution = ? "
                   "WHERE id = ?", [status, user.username, now, (resolution or "").strip()[:2000], request_id])
    audit.record_for(user, "correction_resolved", page=page, member_key=visible[request_id]["member_key"],
                     detail={"id": request_id, "status": status})
