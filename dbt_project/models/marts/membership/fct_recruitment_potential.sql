{{ config(**monthly_restatement(dated=false)) }}
-- grain: one period × employer (employer_code) of the social-insurance extract (current BHXH file of the
-- month). members = members at month end of the employer's CĐCS (registry employer_code);
-- potential = insured workers who are not members (never below 0); has_cdcs = the employer has a CĐCS
-- open at the month's end.
with current_files as (
    select file_id from {{ ref('int_file_versions_ranked') }}
    where kind = 'insurance' and is_current_version
),

insured as (
    select
        i.period,
        i.employer_code,
        max(i.employer_name)          as employer_name,
        max(i.province_new_code)      as province_new_code,
        max(i.industry_code)          as industry_code,
        max(i.ownership_type)         as ownership_type,
        sum(i.insured_workers)        as insured_workers,
        sum(i.insured_women)          as insured_women
    from {{ ref('stg_raw__insurance_employers') }} as i
    join current_files as f on f.file_id = i.file_id
    where {{ restated_where('i.period', dated=false) }}
      and {{ raw_file_month_floor('i.file_month', restated_start(dated=false)) }}
    group by i.period, i.employer_code
),

employer_cdcs as (
    select
        period,
        employer_code,
        count(*)                                   as cdcs_count,
        max(top_unit_code)                         as top_unit_code,
        max(upper_unit_code)                       as upper_unit_code,
        max(province_old_code)                     as province_old_code
    from {{ ref('int_cdcs_scope_months') }}
    where employer_code is not null and is_open_at_month_end
      and {{ restated_where('period', dated=false) }}
    group by period, employer_code
),

employer_members as (
    select s.period, s.employer_code, count(*) as members
    from {{ ref('int_member_months') }} as m
    join {{ ref('int_cdcs_scope_months') }} as s
      on s.cdcs_code = m.cdcs_code and s.period = m.period
    where s.employer_code is not null
      and {{ restated_where('m.period', dated=false) }}
    group by s.period, s.employer_code
)

select
    cast(i.period as date)                                  as period,
    cast(i.employer_code as {{ dbt.type_string() }})        as employer_code,
    i.employer_name,
    i.province_new_code,
    c.province_old_code,
    c.top_unit_code,
    c.upper_unit_code,
    i.industry_code,
    i.ownership_type,
    cast(i.insured_workers as bigint)                       as insured_workers,
    cast(i.insured_women as bigint)                         as insured_women,
    cast(coalesce(m.members, 0) as bigint)                  as members,
    cast(greatest(i.insured_workers - coalesce(m.members, 0), 0) as bigint) as potential,
    coalesce(c.cdcs_count, 0) > 0                           as has_cdcs
from insured as i
left join employer_cdcs as c on c.period = i.period and c.employer_code = i.employer_code
left join employer_members as m on m.period = i.period and m.employer_code = i.employer_code
