{{ config(**monthly_restatement(people='merged', dated=false)) }}
{%- set b = restate_bounds(dated=false) %}
-- grain: one service delivery (delivery_id = file_id:source_sheet:source_row) from the current services
-- file of each branch × month. Health-related programmes (e.g. sickness visits) carry no member_key:
-- they are only counted and summed, never linked to a person. A build that merged or split people before its
-- window rewrites their rows of those months only (restate_bounds; their health-related rows have no key and stay).
with rows_ as (
    select * from ({{ current_version_rows('services', 'stg_raw__service_deliveries', people='merged') }}) as cur
    where cur.cccd is not null or cur.cmnd is not null
),

programs as (
    select code, is_health_related from {{ ref('service_programs') }}
)

select
    cast(r.file_id || ':' || coalesce(r.source_sheet, '') || ':' || cast(r.source_row as {{ dbt.type_string() }}) as {{ dbt.type_string() }}) as delivery_id,
    cast(r.period as date)                                  as period,
    r.service_date,
    case when coalesce(p.is_health_related, false) then null
         else {{ member_key_text("coalesce(k.member_key, " ~ keyed_hash("coalesce(r.cccd, 'cmnd:' || r.cmnd)") ~ ")") }} end as member_key,
    r.cdcs_code,
    r.program_code,
    coalesce(p.is_health_related, false)                    as is_health_related,
    cast(r.amount as bigint)                                as amount,
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
left join programs as p on p.code = r.program_code
left join {{ ref('int_cdcs_scope_months') }} as s
  on s.cdcs_code = r.cdcs_code and s.period = r.period
{%- if b is not none and b.k is not none %}
where r.period >= cast('{{ b.w }}' as date) or not coalesce(p.is_health_related, false)
{%- endif %}
