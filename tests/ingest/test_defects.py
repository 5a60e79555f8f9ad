"""The engine against the generator's defect list (issue 3, "Done when"): tiny data generated into a temp
data root, the whole inbox ingested, every defect's exact outcome asserted against
`ground_truth/defects.parquet` (relpath + source_sheet + source_row), refused-row counts per rule equal to
the defect counts, every file-level refusal with its reason, a second ingestion changing nothing, and a
superseding file replacing exactly its predecessor."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import polars as pl
import pytest

from pipelines.ingest import quarantine

pytest.importorskip("pipelines.generate.engine")

ROW_LEVEL_REFUSED = ("row_refused", "deduplicated")
SEED = int(os.environ.get("DOANVIEN_DEFECT_SEED", "42"))  # other seeds: DOANVIEN_DEFECT_SEED=7 pytest …


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    from pipelines.generate.engine import generate

    root = tmp_path_factory.mktemp("defects") / "data"
    mp = pytest.MonkeyPatch()
    mp.setenv("DOANVIEN_DATA_DIR", str(root))
    mp.setenv("DOANVIEN_INGEST_GX", "off")
    try:
        generate("tiny", root, seed=SEED, log=lambda *a, **k: None)
        from pipelines.ingest.engine import ingest_inbox, pending_inbox_files
        pending = pending_inbox_files()
        reports = ingest_inbox()
        assert len(reports) == len(pending)
        by_rel = {str(p.path.relative_to(root)): r for p, r in zip(pending, reports)}
        yield root, by_rel
    finally:
        mp.undo()


def _read(pattern: Path) -> pl.DataFrame:
    files = sorted(pattern.parent.glob(pattern.name))
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed") if files else pl.DataFrame()


def _outcomes(root: Path, by_rel: dict) -> pl.DataFrame:
    """One row per (relpath, source_row): the engine's outcome for it (accepted + flags, or refused + rule)."""
    parts = []
    for rel, rep in by_rel.items():
        if rep.status != "accepted":
            continue
        raw = pl.read_parquet(rep.raw_path)
        q = quarantine.rows_for(rep.file_id, root / "quarantine")  # None: no refused row, no file written
        assert (q is None) == (rep.rows_refused == 0) == (rep.quarantine_path is None)
        q = q if q is not None else pl.DataFrame(schema=quarantine.SCHEMA)
        parts.append(raw.select(pl.lit(rel).alias("relpath"), "source_sheet", "source_row",
                                pl.lit("accepted").alias("outcome"), pl.lit(None, pl.String).alias("rule"),
                                pl.col("flags"),
                                *[pl.col(c).cast(pl.String).alias(c) for c in ("cccd", "birth_date", "join_date")
                                  if c in raw.columns]))
        parts.append(q.select(pl.lit(rel).alias("relpath"), "source_sheet", "source_row",
                              pl.lit("refused").alias("outcome"), "rule"))
    return pl.concat(parts, how="diagonal_relaxed")


def test_file_level_outcomes_match_submissions(ingested):
    root, by_rel = ingested
    subs = pl.read_parquet(root / "ground_truth" / "submissions.parquet")
    wrong = []
    for s in subs.iter_rows(named=True):
        rep = by_rel[s["relpath"]]
        got = (rep.status, rep.reason_code)
        want = (s["expected_status"], s["expected_reason"])
        if got != want:
            wrong.append((s["relpath"], want, got, rep.message_vi))
    assert not wrong, wrong
    # every file-level refusal is in the ledger with its reason and a Vietnamese message
    led = _read(root / "raw" / "files" / "*.parquet")
    refused = led.filter(pl.col("status") == "refused")
    assert refused.height == subs.filter(pl.col("expected_status") == "refused").height
    assert refused.filter(pl.col("reason_code").is_null() | (pl.col("message_vi").str.len_chars() < 10)).height == 0
    # every duplicate arrival has a ledger row of its own (CONTRACTS §4), with no rows
    dups = led.filter(pl.col("status") == "duplicate")
    assert dups.height == subs.filter(pl.col("expected_status") == "duplicate").height > 0
    assert dups.filter((pl.col("reason_code") != "duplicate_content") | (pl.col("rows_read") != 0)).height == 0
    assert sorted(dups["received_at"].to_list()) == sorted(
        subs.filter(pl.col("expected_status") == "duplicate")["received_at"].to_list())
    # rows read = accepted + refused for every file
    assert led.filter(pl.col("rows_read") != pl.col("rows_accepted") + pl.col("rows_refused")).height == 0


def test_every_defect_has_its_exact_outcome(ingested):
    root, by_rel = ingested
    defects = pl.read_parquet(root / "ground_truth" / "defects.parquet")
    out = _outcomes(root, by_rel)
    members = pl.read_parquet(root / "ground_truth" / "members.parquet")
    problems = []
    nfd_invariant = set(members.filter(pl.col("full_name") == pl.col("full_name").str.normalize("NFD"))
                        ["person_id"].to_list())
    row_level = defects.filter(pl.col("source_row").is_not_null())
    joined = row_level.join(out, on=["relpath", "source_row"], how="left", suffix="_got")
    for d in joined.iter_rows(named=True):
        exp, rule, got = d["expected_outcome"], d["expected_rule"], d["outcome"]
        key = (d["defect_type"], d["relpath"], d["source_row"])
        if got is None:
            problems.append((*key, "row not found in raw or quarantine"))
            continue
        if d["source_sheet"] is not None and (d["source_sheet_got"] or "") != (d["source_sheet"] or ""):
            problems.append((*key, f"sheet {d['source_sheet_got']!r} != {d['source_sheet']!r}"))
        if exp in ROW_LEVEL_REFUSED:
            if (got, d["rule"]) != ("refused", rule):
                problems.append((*key, f"want refused/{rule}, got {got}/{d['rule']}"))
        elif exp in ("repaired", "flagged", "conflict"):
            if got != "accepted":
                problems.append((*key, f"want accepted ({exp}), got refused/{d['rule']}"))
            elif rule == "nfd_normalised" and d["person_id"] in nfd_invariant:
                pass  # generator issue (see report): a name NFD leaves unchanged ("Đinh Kim Chi") cannot be flagged
            elif rule and rule not in (d["flags"] or []):
                problems.append((*key, f"want flag {rule}, flags {d['flags']}"))
        else:
            problems.append((*key, f"unexpected row-level outcome {exp}"))
    assert not problems, "\n".join(map(str, problems[:40])) + f"\n{len(problems)} problems"
    # repaired values equal the truth (CCCD restored, Excel serial / text dates read)
    truth = members.select("person_id", pl.col("cccd").alias("t_cccd"), pl.col("birth_date").cast(pl.String)
                           .alias("t_birth"))
    rep_rows = joined.filter(pl.col("defect_type").is_in(["cccd_as_number", "date_excel_serial", "date_text"])
                             & (pl.col("column").is_in(["cccd", "birth_date"]))).join(truth, on="person_id")
    bad = rep_rows.filter(((pl.col("column") == "cccd") & (pl.col("cccd") != pl.col("t_cccd")))
                          | ((pl.col("column") == "birth_date") & (pl.col("birth_date") != pl.col("t_birth"))))
    assert bad.height == 0, bad.select("defect_type", "relpath", "source_row", "column").rows()[:10]
    # file-level defects
    for d in defects.filter(pl.col("source_row").is_null() & pl.col("relpath").is_not_null()).iter_rows(named=True):
        rep = by_rel[d["relpath"]]
        exp, rule = d["expected_outcome"], d["expected_rule"]
        if exp == "file_refused":
            assert (rep.status, rep.reason_code) == ("refused", rule), (d["defect_type"], rep.message_vi)
        elif exp == "deduplicated":
            assert (rep.status, rep.reason_code) == ("duplicate", rule), d["defect_type"]
        elif exp == "repaired":  # a whole file converted (TCVN3): accepted, rows flagged
            assert rep.status == "accepted" and rep.flags.get(rule, 0) > 0, (d["defect_type"], rep.flags)
        elif exp == "superseded":
            assert rep.status == "accepted", d["defect_type"]  # kept as history; the later version wins
        else:
            pytest.fail(f"unexpected file-level outcome {exp} for {d['defect_type']}")


def test_refused_rows_per_rule_equal_the_defect_list(ingested):
    root, by_rel = ingested
    defects = pl.read_parquet(root / "ground_truth" / "defects.parquet")
    want = dict(defects.filter(pl.col("expected_outcome").is_in(ROW_LEVEL_REFUSED) & pl.col("source_row").is_not_null())
                .group_by("expected_rule").len().iter_rows())
    q = _read(root / "quarantine" / "*.parquet")
    got = dict(q.group_by("rule").len().iter_rows()) if q.height else {}
    assert got == want


def test_second_ingestion_changes_nothing(ingested):
    root, by_rel = ingested
    from pipelines.ingest.engine import ingest_inbox, ingest_file, declared_from_path

    def snapshot():
        return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                      for d in ("raw", "quarantine", "reports", "archive") for p in (root / d).rglob("*")
                      if p.is_file() and p.name != ".lock")

    before = snapshot()
    assert ingest_inbox() == []  # nothing pending
    # forcing every file through ingest_file again: each one is a duplicate, nothing changes
    for rel in by_rel:
        p = root / rel
        b, per, k = declared_from_path(p)
        rep = ingest_file(p, branch_code=b, period=per, declared_kind=k)
        assert rep.status == "duplicate" and rep.reason_code == "duplicate_content", rel
    assert snapshot() == before


def test_superseding_file_replaces_exactly_its_predecessor(ingested):
    root, by_rel = ingested
    subs = pl.read_parquet(root / "ground_truth" / "submissions.parquet")
    led = _read(root / "raw" / "files" / "*.parquet")
    old = subs.filter(pl.col("is_superseded"))
    assert old.height >= 1
    for s in old.iter_rows(named=True):
        same = subs.filter((pl.col("branch_code") == s["branch_code"]) & (pl.col("period") == s["period"])
                           & (pl.col("kind") == s["kind"]) & (pl.col("expected_status") == "accepted"))
        latest_rel = same.sort("received_at").tail(1)["relpath"][0]
        assert latest_rel != s["relpath"]
        prev_rep, new_rep = by_rel[s["relpath"]], by_rel[latest_rel]
        # both versions are in the ledger (history kept) ...
        versions = led.filter((pl.col("branch_code") == s["branch_code"]) & (pl.col("period") == s["period"])
                              & (pl.col("kind") == s["kind"]) & (pl.col("status") == "accepted"))
        assert {prev_rep.file_id, new_rep.file_id} <= set(versions["file_id"].to_list())
        # ... and the latest received_at, the one the warehouse uses, is the new file
        assert versions.sort("received_at").tail(1)["file_id"][0] == new_rep.file_id
        raw = pl.read_parquet(new_rep.raw_path)
        assert raw.height == new_rep.rows_accepted == same.sort("received_at").tail(1)["data_rows"][0] - \
            new_rep.rows_refused
        # persons the first version omitted are in the new version only
        omitted = pl.read_parquet(root / "ground_truth" / "defects.parquet").filter(
            (pl.col("defect_type") == "omitted_in_first_version") & (pl.col("relpath") == s["relpath"]))
        if omitted.height:
            members = pl.read_parquet(root / "ground_truth" / "members.parquet")
            cccds = members.filter(pl.col("person_id").is_in(omitted["person_id"].implode()))["cccd"].to_list()
            prev_raw = pl.read_parquet(prev_rep.raw_path)
            assert not prev_raw.filter(pl.col("cccd").is_in(cccds)).height
            assert raw.filter(pl.col("cccd").is_in(cccds)).height == len(cccds)


def test_same_bytes_misfiled_then_sent_right_are_two_versions(ingested):
    """The wrong_kind copy and the right roster share their bytes: two ledger rows, two file ids."""
    root, by_rel = ingested
    shas: dict[str, list[str]] = {}
    for rel, rep in by_rel.items():
        shas.setdefault(rep.sha256, []).append(rel)
    led = _read(root / "raw" / "files" / "*.parquet")
    assert led["file_id"].n_unique() == led.height
    for sha, rels in shas.items():
        statuses = sorted(by_rel[r].status for r in rels)
        if len(rels) > 1 and "duplicate" not in statuses:
            ids = {by_rel[r].file_id for r in rels}
            assert len(ids) == len(rels) and sha[:16] in ids
            assert hashlib.sha256((root / rels[0]).read_bytes()).hexdigest() == sha
