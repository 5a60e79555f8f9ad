"""Truy vấn SQL / SQL for analysts: de-identified marts only, in a sandboxed worker process."""
import datetime as dt

import pandas as pd
import streamlit as st

from dashboards import auth
from pipelines.access import audit, sqlsandbox
from pipelines.access.export import to_csv_bytes, to_xlsx_bytes

PAGE = "sql"
user = auth.require_user(auth.PAGE_ROLES[PAGE], page=PAGE)
tr, md = auth.tr, auth.md
with st.sidebar:
    auth.account_menu(user, key="sql_acct")


@st.cache_resource(show_spinner=False)
def _self_test(path: str) -> tuple:
    """SQL-14: the escape probes, once per analyst file; the page refuses to serve if any succeeds."""
    return tuple(sqlsandbox.self_test(path))


def _export(fmt):
    audit.record_for(user, "export", page=PAGE, detail={"format": fmt, "what": "sql_result"},
                     rows=len((st.session_state.get("sql_result") or {}).get("rows", [])))


def body():
    from pipelines.access.warehouse import analyst_path
    st.title(tr("Truy vấn SQL", "SQL"))
    path = str(analyst_path())
    leaks = _self_test(path)
    if leaks:
        st.error(tr("Hộp cát SQL không an toàn; trang tạm đóng.", "The SQL sandbox is not safe; page closed."))
        audit.record_for(user, "sql_refused", page=PAGE, outcome="sandbox_leak", detail={"probes": list(leaks)})
        return
    st.caption(tr("Chỉ đọc các bảng đã khử định danh (schema marts). Một câu lệnh SELECT; giới hạn "
                  f"{sqlsandbox.DEFAULT_MAX_ROWS} dòng và {sqlsandbox.DEFAULT_TIMEOUT_S:g} giây. Mọi truy vấn được ghi nhật ký.",
                  "Read-only, de-identified tables (schema marts). One SELECT statement; at most "
                  f"{sqlsandbox.DEFAULT_MAX_ROWS} rows and {sqlsandbox.DEFAULT_TIMEOUT_S:g} s. Every query is logged."))
    with st.sidebar.expander(tr("Lược đồ dữ liệu", "Schema"), expanded=False):
        for t in sqlsandbox.schema_catalog(path):
            st.markdown(f"**{md(t['schema'])}.{md(t['table'])}**" + (f" — {md(t['description'])}" if t["description"] else ""))
            st.dataframe(pd.DataFrame(t["columns"]), hide_index=True, width="stretch")
    saved = sqlsandbox.saved_queries(user)
    if saved:
        names = {q["id"]: q["name"] for q in saved}
        pick = st.selectbox(tr("Truy vấn đã lưu", "Saved queries"), [None, *names], key="sql_pick",
                            format_func=lambda i: "—" if i is None else names[i])
        if pick and st.button(tr("Nạp", "Load"), key="sql_load"):
            st.session_state["sql_text"] = next(q["sql"] for q in saved if q["id"] == pick)
    text = st.text_area("SQL", key="sql_text", height=180, max_chars=sqlsandbox.MAX_SQL_LEN,
                        placeholder="SELECT period, sum(members) FROM marts.fct_membership_monthly GROUP BY 1 ORDER BY 1")
    c1, c2, c3 = st.columns([1, 2, 1])
    run = c1.button(tr("Chạy", "Run"), type="primary", key="sql_run", icon=":material/play_arrow:")
    name = c2.text_input(tr("Tên để lưu", "Save as"), key="sql_name", max_chars=100, label_visibility="collapsed",
                         placeholder=tr("Tên truy vấn", "Query name"))
    if c3.button(tr("Lưu", "Save"), key="sql_save"):
        try:
            sqlsandbox.save_query(user, name, text)
            st.success(tr("Đã lưu.", "Saved."))
        except (ValueError, sqlsandbox.SqlRefused) as exc:
            st.error(md(str(exc)))
    if run:
        try:
            with st.spinner(tr("Đang chạy…", "Running…")):
                res = sqlsandbox.run_sql(text, user=user, db_path=path, page=PAGE)
        except sqlsandbox.SqlRefused as exc:
            st.session_state["sql_result"] = None
            st.error(md(str(exc)))
        else:
            if res.ok:
                st.session_state["sql_result"] = {"columns": res.columns, "rows": res.rows,
                                                  "truncated": res.truncated, "elapsed": res.elapsed}
            else:
                st.session_state["sql_result"] = None
                st.error(md(f"{res.error_type}: {(res.error or '').splitlines()[0] if res.error else ''}"))
    r = st.session_state.get("sql_result")
    if r:
        df = pd.DataFrame(r["rows"], columns=r["columns"])
        st.caption(tr(f"{len(df)} dòng, {r['elapsed']:.2f} giây", f"{len(df)} rows, {r['elapsed']:.2f} s"))
        if r["truncated"]:
            st.warning(tr("Kết quả đã bị cắt bớt.", "The result was truncated."))
        st.dataframe(df, hide_index=True, width="stretch")
        stamp = dt.date.today().strftime("%Y%m%d")
        d1, d2, _ = st.columns([1, 1, 4])
        d1.download_button("CSV", to_csv_bytes(r["columns"], r["rows"]), file_name=f"sql_{stamp}.csv",
                           mime="text/csv", key="sql_csv", on_click=_export, args=("csv",), icon=":material/download:")
        d2.download_button("XLSX", to_xlsx_bytes(r["columns"], r["rows"]), file_name=f"sql_{stamp}.xlsx",
                           mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="sql_xlsx",
                           on_click=_export, args=("xlsx",), icon=":material/download:")


auth.run_guarded(body)
