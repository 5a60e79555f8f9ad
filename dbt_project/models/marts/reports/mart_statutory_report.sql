-- grain: one reporting unit × report date (report_id): the nation (TLD), every level-2 unit (provincial
-- federation, central sector union) and every level-3 unit (upper-level union) × the statutory dates
-- 31 May and 30 November (Decision 1454/QĐ-TLĐ) within the data. Stocks are at the report date (month
-- end of May/November); flows are the 6 months ending on it (Dec–May, Jun–Nov). CĐCS are attributed to
-- the units they belong to in the report month.
with monthly as (
    select * from {{ ref('fct_membership_monthly') }}
),

report_dates as (
    select
        period                                                         as report_period,
        {{ month_end('period') }}                                      as report_date,
        cast({{ dbt.dateadd('month', -5, 'period') }} as date)         as window_start
    from {{ ref('int_periods') }}
    where extract(month from period) in (5, 11)
),

flows as (
    select
        r.report_period,
        m.cdcs_code,
        sum(m.joins)          as new_members,
        sum(m.leaves)         as leavers,
        sum(m.transfers_in)   as transfers_in,
        sum(m.transfers_out)  as transfers_out
    from report_dates as r
    join monthly as m on m.period between r.window_start and r.report_period
    group by r.report_period, m.cdcs_code
),

cdcs_first_seen as (
    select unit_code as cdcs_code, min(valid_from) as founded_on
    from {{ ref('dim_union_unit') }}
    where unit_level = 'cdcs'
    group by unit_code
),

per_cdcs as (
    select
        r.report_period,
        r.report_date,
        r.window_start,
        s.cdcs_code,
        s.top_unit_code,
        s.upper_unit_code,
        s.province_new_code,
        coalesce(m.members, 0)                  as members,
        coalesce(m.women, 0)                    as women,
        coalesce(m.ethnic_minority_members, 0)  as ethnic_minority_members,
        coalesce(f.new_members, 0)              as new_members,
        coalesce(f.leavers, 0)                  as leavers,
        coalesce(f.transfers_in, 0)             as transfers_in,
        coalesce(f.transfers_out, 0)            as transfers_out,
        case when coalesce(m.members, 0) > 0 then 1 else 0 end as is_cdcs_with_members,
        case when fs.founded_on between r.window_start and r.report_date then 1 else 0 end as is_new_cdcs
    from report_dates as r
    join {{ ref('int_cdcs_scope_months') }} as s
      on s.period = r.report_period
    left join monthly as m on m.period = r.report_period and m.cdcs_code = s.cdcs_code
    left join flows as f on f.report_period = r.report_period and f.cdcs_code = s.cdcs_code
    left join cdcs_first_seen as fs on fs.cdcs_code = s.cdcs_code
    where s.is_open_at_month_end or coalesce(m.members, 0) > 0 or f.cdcs_code is not null
),

by_unit as (
    select 'nation' as unit_level, 'TLD' as unit_code, report_period, report_date, window_start,
           cast(null as {{ dbt.type_string() }}) as top_unit_code, cast(null as {{ dbt.type_string() }}) as upper_unit_code,
           sum(members) as members, sum(women) as women, sum(ethnic_minority_members) as ethnic_minority_members,
           sum(new_members) as new_members, sum(leavers) as leavers, sum(transfers_in) as transfers_in,
           sum(transfers_out) as transfers_out, sum(is_cdcs_with_members) as cdcs_count, sum(is_new_cdcs) as new_cdcs
    from per_cdcs
    group by report_period, report_date, window_start
    union all
    select 'level_2', top_unit_code, report_period, report_date, window_start,
           top_unit_code, cast(null as {{ dbt.type_string() }}),
           sum(members), sum(women), sum(ethnic_minority_members), sum(new_members), sum(leavers),
           sum(transfers_in), sum(transfers_out), sum(is_cdcs_with_members), sum(is_new_cdcs)
    from per_cdcs
    where top_unit_code is not null
    group by top_unit_code, report_period, report_date, window_start
    union all
    select 'level_3', upper_unit_code, report_period, report_date, window_start,
           max(top_unit_code), upper_unit_code,
           sum(members), sum(women), sum(ethnic_minority_members), sum(new_members), sum(leavers),
           sum(transfers_in), sum(transfers_out), sum(is_cdcs_with_members), sum(is_new_cdcs)
    from per_cdcs
    where upper_unit_code is not null
    group by upper_unit_code, report_period, report_date, window_start
),

unit_names as (
    select unit_code, unit_name, province_new_code,
           row_number() over (partition by unit_code order by valid_from desc) as rn
    from {{ ref('dim_union_unit') }}
)

select
    cast(b.unit_code || '@' || cast(b.report_date as {{ dbt.type_string() }}) as {{ dbt.type_string() }}) as report_id,
    b.unit_level,
    b.unit_code,
    case when b.unit_level = 'nation' then 'Tổng Liên đoàn Lao động Việt Nam' else n.unit_name end as unit_name,
    cast(b.report_date as date)            as report_date,
    cast(b.report_period as date)          as report_period,
    cast(b.window_start as date)           as window_start,
    b.top_unit_code,
    b.upper_unit_code,
    n.province_new_code,
    cast(b.members as bigint)              as members,
    cast(b.women as bigint)                as women,
    cast(b.ethnic_minority_members as bigint) as ethnic_minority_members,
    cast(b.new_members as bigint)          as new_members,
    cast(b.leavers as bigint)              as leavers,
    cast(b.transfers_in as bigint)         as transfers_in,
    cast(b.transfers_out as bigint)        as transfers_out,
    cast(b.cdcs_count as bigint)           as cdcs_count,
    cast(b.new_cdcs as bigint)             as new_cdcs
from by_unit as b
left join unit_names as n on n.unit_code = b.unit_code and n.rn = 1
