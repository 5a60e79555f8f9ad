{{ config(**monthly_restatement()) }}
-- grain: one period × province_new_code × province_old_code × top_unit_code × upper_unit_code ×
-- ownership_type × industry_code × gender × age_band × ethnic_group (cube_key). Members at month end and
-- the month's joins, leaves and transfers, aggregated straight from the monthly member snapshots
-- (nothing member × month is materialised). Dimension values that are unknown are 'unknown'.
with members as (
    select
        m.period,
        m.cdcs_code,
        m.gender,
        {{ age_band('m.birth_date', 'm.period') }}     as age_band,
        {{ ethnic_group('m.ethnicity_code') }}         as ethnic_group,
        1 as members, 0 as joins, 0 as leaves, 0 as transfers_in, 0 as transfers_out
    from {{ ref('int_member_months') }} as m
    where {{ period_window('m.period') }}
),

events as (
    select
        e.period,
        e.cdcs_code,
        e.gender,
        {{ age_band('e.birth_date', 'e.period') }}     as age_band,
        {{ ethnic_group('e.ethnicity_code') }}         as ethnic_group,
        0 as members,
        case when e.event_type = 'join' then 1 else 0 end         as joins,
        case when e.event_type = 'leave' then 1 else 0 end        as leaves,
        case when e.event_type = 'transfer_in' then 1 else 0 end  as transfers_in,
        case when e.event_type = 'transfer_out' then 1 else 0 end as transfers_out
    from {{ ref('int_member_events') }} as e
    where {{ period_window('e.period') }}
),

facts as (
    select * from members
    union all
    select * from events
),

cells as (
    select
        f.period,
        coalesce(s.province_new_code, 'unknown')  as province_new_code,
        coalesce(s.province_old_code, 'unknown')  as province_old_code,
        coalesce(s.top_unit_code, 'unknown')      as top_unit_code,
        coalesce(s.upper_unit_code, 'none')       as upper_unit_code,
        coalesce(s.ownership_type, 'unknown')     as ownership_type,
        coalesce(s.industry_code, 'unknown')      as industry_code,
        coalesce(f.gender, 'unknown')             as gender,
        f.age_band,
        f.ethnic_group,
        sum(f.members)        as members,
        sum(f.joins)          as joins,
        sum(f.leaves)         as leaves,
        sum(f.transfers_in)   as transfers_in,
        sum(f.transfers_out)  as transfers_out
    from facts as f
    left join {{ ref('int_cdcs_scope_months') }} as s
      on s.cdcs_code = f.cdcs_code and s.period = f.period
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
)

select
    cast({{ dbt.hash(dbt.concat(["cast(period as " ~ dbt.type_string() ~ ")", "'|'", "province_new_code", "'|'", "province_old_code", "'|'", "top_unit_code", "'|'", "upper_unit_code", "'|'", "ownership_type", "'|'", "industry_code", "'|'", "gender", "'|'", "age_band", "'|'", "ethnic_group"])) }} as {{ dbt.type_string() }}) as cube_key,
    cast(period as date)            as period,
    province_new_code,
    province_old_code,
    top_unit_code,
    upper_unit_code,
    ownership_type,
    industry_code,
    gender,
    age_band,
    ethnic_group,
    cast(members as bigint)         as members,
    cast(joins as bigint)           as joins,
    cast(leaves as bigint)          as leaves,
    cast(transfers_in as bigint)    as transfers_in,
    cast(transfers_out as bigint)   as transfers_out
from cells
