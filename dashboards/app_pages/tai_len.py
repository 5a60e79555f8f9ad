"""Tải lên báo cáo / Upload files: an official uploads a branch's file for a period and kind; the ingestion
engine validates it at once; accepted files go to the inbox. Below: the branch's upload history."""
import datetime as dt
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboards import auth
from pipelines.access import uploads
from pipelines.analytics.labels import flag_label, rule_label

PAGE = "tai_len"
user = auth.require_user(auth.PAGE_ROLES[PAGE], page=PAGE)
tr, md = auth.tr, auth.md
with st.sidebar:
    auth.account_menu(user, key="up_acct")

KIND_LABELS = {"roster": ("Danh sách đoàn viên", "Member roster"), "dues": ("Đoàn phí", "Dues"),
               "services": ("Hỗ trợ, phúc lợi", "Services"), "activities": ("Hoạt động", "Activities")}
STATUS_LABELS = {"accepted": ("Đã nhận", "Accepted"), "refused": ("Bị từ chối", "Refused"),
                 "duplicate": ("Trùng tệp đã gửi", "Duplicate"), "error": ("Lỗi", "Error")}


def _months(n=24):
    d = dt.date.today().replace(day=1)
    out = []
    for _ in range(n):
        out.append(d)
        d = (d - dt.timedelta(days=1)).replace(day=1)
    return out


def body():
    st.title(tr("Tải lên báo cáo", "Upload files"))
    branches = uploads.branches_for(user)
    if not branches:
        st.info(tr("Không có đơn vị nào để gửi báo cáo trong phạm vi của bạn.", "No branch in your scope."))
        return
    names = {b["branch_code"]: b["branch_name"] for b in branches}
    # GX (~3 s to import) loads in the background while the official picks a file, so the first upload of the
    # server process waits for validation only (once per process; nothing when GX is off)
    from pipelines.ingest.rules import prewarm_gx
    prewarm_gx()
    with st.form("up_form", clear_on_submit=True):
        c1, c2, c3 = st.columns(3)
        branch = c1.selectbox(tr("Đơn vị gửi", "Branch"), list(names), format_func=lambda c: f"{names[c]} ({c})")
        period = c2.selectbox(tr("Kỳ báo cáo", "Period"), _months(), format_func=lambda d: f"{d:%m/%Y}")
        kind = c3.selectbox(tr("Loại báo cáo", "Kind"), uploads.UPLOAD_KINDS,
                            format_func=lambda k: tr(*KIND_LABELS[k]))
        f = st.file_uploader(tr("Tệp (.xlsx, .xls, .csv, .parquet)", "File (.xlsx, .xls, .csv, .parquet)"),
                             type=["xlsx", "xls", "csv", "parquet"], key="up_file")
        submitted = st.form_submit_button(tr("Gửi và kiểm tra", "Send and check"), type="primary",
                                          icon=":material/upload:")
    if submitted:
        if f is None:
            # also what a click gets while the browser is still sending a file just chosen: Streamlit asks the
            # server for an upload URL before it shows the file and disables the submit button
            st.warning(tr("Chọn một tệp (nếu vừa chọn, đợi tệp tải lên xong rồi bấm gửi lại).",
                          "Choose a file (if you just chose one, wait until it has uploaded, then send again)."))
        else:
            try:
                res = uploads.handle_upload(user, branch_code=branch, period=period, kind=kind,
                                            original_name=f.name, data=f.getvalue(), page=PAGE)
            except (PermissionError, ValueError) as exc:
                st.error(md(str(exc)))
            else:
                st.session_state["up_last"] = res.__dict__
    last = st.session_state.get("up_last")
    if last:
        status = last["status"]
        text = f"{tr(*STATUS_LABELS.get(status, (status, status)))}: {md(last['message_vi'])}"
        (st.success if status == "accepted" else st.warning if status == "duplicate" else st.error)(text)
        rep = last["report"]
        c1, c2, c3 = st.columns(3)
        c1.metric(tr("Dòng đọc", "Rows read"), rep.get("rows_read", 0))
        c2.metric(tr("Dòng nhận", "Rows accepted"), rep.get("rows_accepted", 0))
        c3.metric(tr("Dòng bị loại", "Rows refused"), rep.get("rows_refused", 0))
        st.caption(tr("Tên lưu trên máy chủ: ", "Stored as: ") + md(last["stored_name"]))
        if rep.get("counts_by_rule"):  # the rules broken, by their label (a branch never sees a rule code)
            st.dataframe(pd.DataFrame([(rule_label(c, auth.lang()), n) for c, n in sorted(rep["counts_by_rule"].items())],
                                      columns=[tr("Quy tắc", "Rule"), tr("Số dòng", "Rows")]), hide_index=True)
        if rep.get("flags"):  # accepted rows that were repaired or noted (a restored leading zero, an ignored value…)
            st.dataframe(pd.DataFrame([(flag_label(c, auth.lang()), n) for c, n in sorted(rep["flags"].items())],
                                      columns=[tr("Ghi chú trên dòng được nhận", "Note on accepted rows"),
                                               tr("Số dòng", "Rows")]), hide_index=True)
        if last.get("xlsx_report") and Path(last["xlsx_report"]).exists():
            st.download_button(tr("Tải bảng lỗi (Excel)", "Download the error workbook"),
                               Path(last["xlsx_report"]).read_bytes(), file_name=f"loi_{rep.get('file_id', 'tep')}.xlsx",
                               mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                               icon=":material/download:", on_click="ignore", key="up_dl")
    st.subheader(tr("Lịch sử gửi tệp", "Upload history"))
    hist = uploads.upload_history(user)
    if not hist:
        st.caption(tr("Chưa có tệp nào.", "No files yet."))
        return
    df = pd.DataFrame(hist)
    df["status"] = df["status"].map(lambda s: tr(*STATUS_LABELS.get(s, (s, s))))
    st.dataframe(df.rename(columns={"original_name": tr("Tên tệp", "File"), "branch_code": tr("Đơn vị", "Branch"),
                                    "period": tr("Kỳ", "Period"), "kind": tr("Loại", "Kind"),
                                    "received_at": tr("Nhận lúc", "Received"), "status": tr("Trạng thái", "Status"),
                                    "message_vi": tr("Ghi chú", "Message")}),
                 hide_index=True, width="stretch")
    # the error workbook of any accepted file of the history (made on request for files that came in a batch)
    accepted = [h for h in hist if h["status"] == "accepted"]
    if accepted:
        labels = {h["file_id"]: f"{h['original_name']} · {h['branch_code']} · " + (f"{h['period']:%m/%Y}" if h['period'] else "")
                  for h in accepted}
        fid = st.selectbox(tr("Bảng lỗi của tệp", "Error workbook of the file"), list(labels),
                           format_func=lambda k: labels[k], key="up_hist_file")
        if st.button(tr("Chuẩn bị bảng lỗi (Excel)", "Prepare the error workbook"), key="up_hist_prepare"):
            path, why = uploads.history_workbook_or_reason(user, fid, page=PAGE, lang=auth.lang())
            if path is None:
                st.error(why)  # which of the reasons: the original gone, its refused rows unreadable, …
            else:
                st.download_button(tr("Tải bảng lỗi (Excel)", "Download the error workbook"), path.read_bytes(),
                                   file_name=f"loi_{fid}.xlsx",
                                   mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                                   icon=":material/download:", on_click="ignore", key="up_hist_dl")


auth.run_guarded(body)
