"""Structure of the dbt project: the rules the brief and CONTRACTS.md set, checked without building.

- seeds are identical copies of data/reference/*.csv, with codes typed as text;
- every model has a description stating its grain; every mart/restricted column is described with a
  Vietnamese label (meta.label_vi) and a data type (enforced contracts);
- keys are tested (unique + not_null), enums have accepted_values;
- no `extensions:` in the profile and no INSTALL anywhere (offline);
- DuckDB-specific functions appear only in dbt_project/macros (portability);
- the member-key secret is not rendered into SQL;
- `dbt parse` and `dbt docs generate` work (the latter on an empty raw zone: sources tolerate no files).
"""
from __future__ import annotations

import filecmp
import os
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "dbt_project"
MODELS = PROJECT / "models"


def _model_yaml() -> dict[str, dict]:
    out = {}
    for path in MODELS.rglob("*.yml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for m in doc.get("models", []) or []:
            out[m["name"]] = {**m, "_path": path}
    return out


def test_seeds_are_identical_copies_of_the_reference_data():
    ref = REPO / "data" / "reference"
    csvs = sorted(p.name for p in ref.glob("*.csv"))
    assert csvs, "no reference CSV"
    for name in csvs:
        assert filecmp.cmp(ref / name, PROJECT / "seeds" / name, shallow=False), name
    assert not list((PROJECT / "seeds").glob("*.geojson"))
    seeds = yaml.safe_load((PROJECT / "seeds" / "_seeds.yml").read_text(encoding="utf-8"))["seeds"]
    typed = {s["name"]: s["config"]["column_types"] for s in seeds}
    assert typed["provinces_2025"]["old_code"] == typed["provinces_2025"]["new_code"] == "varchar"
    assert typed["ethnic_groups"]["code"] == "varchar"


def test_every_model_is_documented_with_its_grain():
    docs = _model_yaml()
    sql = {p.stem for p in MODELS.rglob("*.sql")}
    assert sql <= set(docs), f"models without YAML: {sorted(sql - set(docs))}"
    for name in sql:
        d = (docs[name].get("description") or "").lower()
        assert "grain" in d, f"{name}: the description must state the grain"


def test_contracted_models_describe_every_column_with_a_vietnamese_label():
    docs = _model_yaml()
    marts = [p.stem for p in (MODELS / "marts").rglob("*.sql")] + [p.stem for p in (MODELS / "restricted").rglob("*.sql")]
    assert len(marts) >= 17
    for name in marts:
        m = docs[name]
        assert m.get("config", {}).get("contract", {}).get("enforced") is True, name
        sql_cols = None
        for col in m["columns"]:
            assert col.get("description"), (name, col["name"])
            assert col.get("data_type"), (name, col["name"])
            label = (col.get("config") or {}).get("meta", {}).get("label_vi") or (col.get("meta") or {}).get("label_vi")
            assert label, (name, col["name"])
        del sql_cols


def test_keys_and_enums_are_tested():
    docs = _model_yaml()

    def tests_of(col):
        out = set()
        for t in col.get("data_tests", []) or []:
            out.add(t if isinstance(t, str) else next(iter(t)))
        return out

    keys = {"dim_union_unit": "unit_version_key", "dim_province": "province_key", "dim_date": "date_day",
            "dim_member": "member_key", "fct_member_events": "event_id", "mart_membership_cube": "cube_key",
            "fct_service_deliveries": "delivery_id", "fct_activity_participation": "participation_id",
            "fct_submissions": "submission_id", "mart_statutory_report": "report_id",
            "dq_member_conflicts": "conflict_id", "dq_refused_rows": "refused_row_id", "member_pii": "member_key"}
    for model, key in keys.items():
        col = next(c for c in docs[model]["columns"] if c["name"] == key)
        assert {"unique", "not_null"} <= tests_of(col), model
    enums = {("fct_member_events", "event_type"), ("fct_member_events", "leave_reason_code"),
             ("dim_union_unit", "unit_level"), ("dim_member", "gender"), ("mart_membership_cube", "age_band"),
             ("mart_membership_cube", "ethnic_group"), ("fct_submissions", "status"), ("fct_submissions", "kind"),
             ("dq_member_conflicts", "conflict_type"), ("dim_province", "province_set")}
    for model, column in enums:
        col = next(c for c in docs[model]["columns"] if c["name"] == column)
        assert tests_of(col) & {"accepted_values", "relationships"}, (model, column)
    # every scope column in the marts points to the unit dimension or the province dimension
    for name, m in docs.items():
        if "marts" not in str(m["_path"]):
            continue
        for col in m["columns"]:
            if col["name"] in ("top_unit_code", "upper_unit_code", "province_new_code") and tests_of(col):
                assert tests_of(col) & {"relationships", "relationships_where"}, (name, col["name"])


def test_marts_filtered_by_scope_carry_scope_columns():
    docs = _model_yaml()
    for name in ("fct_membership_monthly", "fct_member_events", "fct_dues_monthly", "fct_service_deliveries",
                 "fct_activity_participation", "mart_membership_cube", "mart_statutory_report",
                 "fct_recruitment_potential", "fct_submissions", "dq_member_conflicts", "dq_refused_rows",
                 "dim_member"):
        cols = {c["name"] for c in docs[name]["columns"]}
        assert {"top_unit_code", "upper_unit_code", "province_new_code"} <= cols, name


def test_offline_profile_and_no_install():
    profile = (PROJECT / "profiles" / "profiles.yml").read_text(encoding="utf-8")
    assert not re.search(r"^\s*extensions\s*:", profile, re.M)
    for path in list(PROJECT.rglob("*.sql")) + [REPO / "dbt_project.yml"]:
        assert not re.search(r"\binstall\s+\w+", path.read_text(encoding="utf-8"), re.I), path


DUCKDB_ONLY = re.compile(r"\b(read_parquet|generate_series|getvariable|sha256|strip_accents|nfc_normalize|"
                         r"list_contains|last_day|regexp_replace|union\s+all\s+by\s+name|glob\s*\(|count_if|"
                         r"bool_or|arg_max|qualify)\b", re.I)


def test_duckdb_specific_sql_only_in_macros():
    for path in MODELS.rglob("*.sql"):
        text = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines()
                         if not line.strip().startswith("--"))
        hits = DUCKDB_ONLY.findall(text.replace("content_sha256", "").replace("sha256 as", ""))
        assert not hits, f"{path.relative_to(REPO)} uses {hits}: move it behind a macro"


def test_secret_is_never_rendered_into_sql():
    """Only the dbt-duckdb plugin reads the secret (os.environ); no Jinja env_var() would render it into SQL."""
    pattern = re.compile(r"env_var\(\s*['\"]DOANVIEN_MEMBER_KEY_SECRET")
    paths = list(PROJECT.rglob("*.sql")) + list(PROJECT.rglob("*.yml")) + [REPO / "dbt_project.yml"]
    for path in paths:
        assert not pattern.search(path.read_text(encoding="utf-8")), path
    assert "getvariable('doanvien_member_key_secret')" in (PROJECT / "macros" / "portability.sql").read_text()


def test_docs_generate_on_an_empty_raw_zone(tmp_path):
    from dbt.cli.main import dbtRunner

    env = {"DOANVIEN_BUILD_DB": str(tmp_path / "docs.duckdb"), "DOANVIEN_RAW_DIR": str(tmp_path / "raw"),
           "DOANVIEN_REGISTRY_DIR": str(tmp_path / "registry"), "DOANVIEN_QUARANTINE_DIR": str(tmp_path / "q"),
           "DBT_PROJECT_DIR": str(REPO), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    target = tmp_path / "target"
    try:
        res = dbtRunner().invoke(["docs", "generate", "--project-dir", str(REPO), "--profiles-dir",
                                  str(PROJECT / "profiles"), "--target-path", str(target), "--log-path", str(target)])
    finally:
        try:
            from dbt.adapters.duckdb.connections import DuckDBConnectionManager
            if getattr(DuckDBConnectionManager, "_ENV", None) is not None:
                DuckDBConnectionManager._ENV.close()
                DuckDBConnectionManager._ENV = None
        except Exception:
            pass
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert res.success, res.exception
    assert (target / "catalog.json").exists() and (target / "manifest.json").exists()
    manifest = (target / "manifest.json").read_text(encoding="utf-8")
    assert '"label_vi"' in manifest
    assert len(re.findall(r'"exposure\.doanvien\.', manifest)) >= 11
