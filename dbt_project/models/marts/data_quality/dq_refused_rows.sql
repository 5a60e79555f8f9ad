-- grain: one refused row × broken rule (refused_row_id = file_id:source_sheet:source_row:rule:column),
-- from the quarantine, with the file's branch, period and kind. The refused value itself is left out
-- (it may be a CCCD or a name); the message explains the problem.
with refused as (
    select * from {{ ref('stg_raw__refused_rows') }}
),

files as (
    select file_id, branch_code, period, kind, received_at, is_current_version, is_superseded
    from {{ ref('int_file_versions_ranked') }}
)

select
    cast(r.file_id || ':' || coalesce(r.source_sheet, '') || ':' || cast(r.source_row as {{ dbt.type_string() }})
         || ':' || r.rule_code || ':' || coalesce(r.column_name, '') as {{ dbt.type_string() }}) as refused_row_id,
    r.file_id,
    f.branch_code,
    cast(f.period as date)              as period,
    f.kind,
    f.received_at,
    r.source_sheet,
    r.source_row,
    r.rule_code,
    r.column_name,
    r.message_vi,
    r.message_en,
    coalesce(f.is_current_version, false) as is_current_version,
    b.province_new_code,
    case when f.branch_code = 'BHXH' then null else f.branch_code end as upper_unit_code,
    u.top_unit_code
from refused as r
left join files as f on f.file_id = r.file_id
left join (select branch_code, max(province_new_code) as province_new_code
           from {{ ref('stg_registry__branches') }} group by branch_code) as b
  on b.branch_code = f.branch_code
left join (select unit_code, max(top_unit_code) as top_unit_code
           from {{ ref('int_union_units_resolved') }} group by unit_code) as u
  on u.unit_code = f.branch_code
