-- grain: one person (member_key). RESTRICTED: identifying data, read only through pipelines.access.
-- Attributes come from the person's latest current-roster row (latest month, latest file, CCCD rows
-- before legacy CMND rows); cdcs_code is the unit where the person is counted in their latest
-- month, as dim_member.cdcs_code (the same macro, member_current_cdcs, on the two per-person states joined on the
-- UUID key: 4 s less at national than joining dim_member on its text key); status and age_band are dim_member's too
-- (macros member_status, member_age_band), so a member lookup reads one table by its key index and dim_member needs
-- none. A projection of int_member_roster_states (kept up to date month by month).
{%- set latest = '(select max(m_last_period) from ' ~ ref('int_member_month_states') ~ ')' %}
select
    s.member_key_text                      as member_key,
    case when s.r_identity_id like 'cmnd:%' then null else s.r_identity_id end as cccd,
    c.cmnd,
    s.r_full_name                          as full_name,
    s.r_name_search                        as name_search,
    s.r_birth_date                         as birth_date,
    s.r_birth_date_precision               as birth_date_precision,
    s.r_gender                             as gender,
    s.r_ethnicity_code                     as ethnicity_code,
    s.r_bhxh_code                          as bhxh_code,
    s.r_member_code                        as member_code,
    {{ member_current_cdcs('m', 's') }} as cdcs_code,
    s.r_insurance_salary                   as insurance_salary,
    s.r_join_date                          as join_date,
    s.r_last_period                        as last_roster_period,
    -- dim_member's standing (the same macros): a member lookup reads this one table by its key index
    {{ member_status('m', latest) }}       as status,
    {{ member_age_band('m', 's', latest) }} as age_band
from (select *, {{ member_key_text('member_key') }} as member_key_text
      from {{ ref('int_member_roster_states') }}) as s
left join {{ ref('int_member_month_states') }} as m on m.member_key = s.member_key
left join (
    -- the largest legacy CMND written for the person (int_identity_variants: every way they were written): the
    -- CMND of their CMND records, or one written beside their CCCD when the row links them (macro cmnd_row_pairs);
    -- never a CMND that dq_member_conflicts lists as 'cmnd_several_cccd' or 'cmnd_beside_other_name' for them
    select k.member_key, max(x.cmnd) as cmnd
    from (
        select cmnd, 'cmnd:' || cmnd as identity_record
        from {{ ref('int_identity_variants') }}
        where cccd is null and cmnd is not null
        union all
        select cmnd, cccd
        from ({{ cmnd_row_pairs(ref('int_identity_variants')) }}) as p
        where links_by_row
    ) as x
    join {{ ref('int_member_keys') }} as k on k.identity_record = x.identity_record
    group by k.member_key
) as c on c.member_key = s.member_key
where s.r_last_period is not null
