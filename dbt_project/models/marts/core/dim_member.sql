-- grain: one person (member_key). De-identified: gender, birth year, age band and the current unit only;
-- no CCCD, name, birth date, salary or ethnicity at row level (those are in restricted.member_pii).
-- "Current" = the person's latest month at month end in the data (carried-forward months included).
with months as (
    select member_key, period, cdcs_code, gender, birth_date, join_date
    from {{ ref('int_member_months') }}
),

last_period as (
    select max(period) as period from months
),

latest as (
    -- the person's latest month (one row per member_key × period): arg_max, not a window sort of every month
    select
        member_key,
        max(period)                   as period,
        arg_max_null(cdcs_code, period) as cdcs_code,
        arg_max_null(gender, period) as gender,
        arg_max_null(birth_date, period) as birth_date,
        min(period)                   as first_period,
        min(join_date)                as first_join_date
    from months
    group by member_key
),

keys as (
    select distinct member_key, identity_id from {{ ref('int_member_keys') }}
),

roster_attributes as (
    -- people never active at a month end (joined and left within a month) still get a row
    select
        k.member_key,
        max(r.gender)          as gender,
        max(r.birth_date)      as birth_date,
        max(r.cdcs_code)       as cdcs_code,
        max(r.period)          as period,
        min(r.join_date)       as join_date
    from {{ ref('int_roster_rows_monthly') }} as r
    join {{ ref('int_member_keys') }} as k on k.identity_record = r.identity_record
    where not r.is_carried_forward
    group by k.member_key
)

select
    k.member_key,
    coalesce(l.gender, ra.gender)                                             as gender,
    cast(extract(year from coalesce(l.birth_date, ra.birth_date)) as integer) as birth_year,
    {{ age_band('coalesce(l.birth_date, ra.birth_date)', '(select period from last_period)') }} as age_band,
    coalesce(l.cdcs_code, ra.cdcs_code)                                       as cdcs_code,
    coalesce(l.period = (select period from last_period), false)              as is_active,
    case when coalesce(l.period = (select period from last_period), false)
         then 'active' else 'left' end                                        as status,
    s.first_period,
    s.period                                                                  as last_period,
    coalesce(s.first_join_date, ra.join_date)                                 as first_join_date,
    case when k.identity_id like 'cmnd:%' then 'cmnd' else 'cccd' end         as identity_source,
    sc.top_unit_code,
    sc.upper_unit_code,
    sc.province_old_code,
    sc.province_new_code,
    sc.ownership_type,
    sc.industry_code
from keys as k
left join latest as l on l.member_key = k.member_key
left join roster_attributes as ra on ra.member_key = k.member_key
left join latest as s on s.member_key = k.member_key
left join {{ ref('int_cdcs_scope_months') }} as sc
  on sc.cdcs_code = coalesce(l.cdcs_code, ra.cdcs_code)
 and sc.period = coalesce(l.period, ra.period)
