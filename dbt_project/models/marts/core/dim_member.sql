-- grain: one person (member_key). De-identified: gender, birth year, age band and the current unit only;
-- no CCCD, name, birth date, salary or ethnicity at row level (those are in restricted.member_pii).
-- "Current" = the person's latest month at month end in the data (carried-forward months included); people
-- never active at a month end (joined and left within a month) take their latest current-roster row.
-- A projection of int_member_month_states and int_member_roster_states (one row per person each, kept up to
-- date month by month).
with states as (
    -- every person has a current-roster row (identity records come from current-roster rows), so the roster
    -- states are the list of people: no distinct over the 12 M identity records, one join less
    select
        r.member_key,
        r.r_identity_id,
        m.m_last_period, m.m_cdcs_code, m.m_gender, m.m_birth_date, m.m_first_period, m.m_first_join_date,
        r.r_gender, r.r_birth_date, r.r_cdcs_code, r.r_last_period, r.r_join_date
    from {{ ref('int_member_roster_states') }} as r
    left join {{ ref('int_member_month_states') }} as m on m.member_key = r.member_key
),

last_period as (
    select max(m_last_period) as period from {{ ref('int_member_month_states') }}
)

select
    {{ member_key_text('s.member_key') }}      as member_key,
    coalesce(s.m_gender, s.r_gender)                                           as gender,
    cast(extract(year from coalesce(s.m_birth_date, s.r_birth_date)) as integer) as birth_year,
    {{ member_age_band('s', 's', '(select period from last_period)') }} as age_band,
    {{ member_current_cdcs('s', 's') }}                                    as cdcs_code,
    {{ member_is_active('s', '(select period from last_period)') }}        as is_active,
    {{ member_status('s', '(select period from last_period)') }}           as status,
    s.m_first_period                                                           as first_period,
    s.m_last_period                                                            as last_period,
    coalesce(s.m_first_join_date, s.r_join_date)                               as first_join_date,
    case when s.r_identity_id like 'cmnd:%' then 'cmnd' else 'cccd' end          as identity_source,
    sc.top_unit_code,
    sc.upper_unit_code,
    sc.province_old_code,
    sc.province_new_code,
    sc.ownership_type,
    sc.industry_code
from states as s
left join {{ ref('int_cdcs_scope_months') }} as sc
  on sc.cdcs_code = {{ member_current_cdcs('s', 's') }}
 and sc.period = coalesce(s.m_last_period, s.r_last_period)
