{{ config(**monthly_restatement(people='merged', dated=false)) }}
-- grain: one member's participation in one activity (participation_id = file_id:source_sheet:source_row)
-- from the current activities file of each branch × month. No names, no CCCD: member_key only. A build that
-- merged or split people before its window rewrites their rows of those months only (restate_bounds).
with rows_ as (
    select * from ({{ current_version_rows('activities', 'stg_raw__activity_participations', people='merged') }}) as cur
    where cur.cccd is not null or cur.cmnd is not null
)

select
    cast(r.file_id || ':' || coalesce(r.source_sheet, '') || ':' || cast(r.source_row as {{ dbt.type_string() }}) as {{ dbt.type_string() }}) as participation_id,
    cast(r.period as date)                                  as period,
    r.activity_date,
    r.activity_type_code                                    as activity_type,
    r.activity_name,
    {{ member_key_text("coalesce(k.member_key, " ~ keyed_hash("coalesce(r.cccd, 'cmnd:' || r.cmnd)") ~ ")") }} as member_key,
    r.cdcs_code,
    r.branch_code,
    s.top_unit_code,
    s.upper_unit_code,
    s.province_old_code,
    s.province_new_code,
    s.ownership_type,
    s.industry_code
from rows_ as r
left join {{ ref('int_member_keys') }} as k
  on k.identity_record = coalesce(r.cccd, 'cmnd:' || r.cmnd)
left join {{ ref('int_cdcs_scope_months') }} as s
  on s.cdcs_code = r.cdcs_code and s.period = r.period
