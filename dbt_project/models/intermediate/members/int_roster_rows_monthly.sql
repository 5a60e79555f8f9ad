-- grain: one roster row × month it stands for (file_id × source_sheet × source_row × period).
-- A submitted month uses its own current roster; a month a branch did not submit repeats the rows of
-- its last accepted roster (is_carried_forward). Identity columns are normalised here.
with branch_months as (
    select * from {{ ref('int_roster_branch_months') }}
    where source_file_id is not null
),

rows_ as (
    select * from {{ ref('stg_raw__roster_rows') }}
)

select
    bm.period,
    bm.branch_code,
    bm.source_period                                    as report_period,
    bm.is_carried_forward,
    r.file_id,
    r.file_month,
    r.source_sheet,
    r.source_row,
    r.flags,
    r.cdcs_code,
    r.cccd,
    r.cmnd,
    coalesce(r.cccd, 'cmnd:' || r.cmnd)                 as identity_record,
    r.full_name,
    -- name_key(r.full_name) without its NFC and blank folding: ingestion (normalize.prepare_text) stores names
    -- NFC, trimmed, with single spaces (tests/ingest/test_ingest.py::test_names_are_stored_nfc_trimmed_single_spaced),
    -- so lower case is all that is left (~8 s less over a national month)
    lower(r.full_name)                                  as name_key,
    r.birth_date,
    r.birth_date_precision,
    r.gender,
    r.ethnicity_code,
    r.bhxh_code,
    r.member_code,
    r.join_date,
    r.insurance_salary,
    r.leave_date,
    case
        when r.leave_date is null then null
        when r.leave_reason_code in ('transfer', 'transfer_out', 'chuyen_sinh_hoat') then 'transfer'
        else coalesce(r.leave_reason_code, 'other')
    end                                                 as leave_reason_code,
    (r.leave_date is null or r.leave_date > {{ month_end('bm.period') }}) as is_active_at_month_end
from branch_months as bm
join rows_ as r
  on r.file_id = bm.source_file_id
where r.cccd is not null or r.cmnd is not null
