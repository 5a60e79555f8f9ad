{{ config(materialized='table') }}
-- grain: one person (member_key). The per-person summaries dim_member and restricted.member_pii are projected
-- from, kept up to date month by month instead of re-aggregating every month of history:
-- - m_*: from the month-end memberships (int_member_months, carried-forward months included): the latest month
--   (its CĐCS, gender, birth date), the first month, the earliest join date (and the first month it was written);
-- - r_*: from the person's current-roster rows (not carried forward): the latest row by (month, CCCD rows before
--   CMND rows, file, row) with its details, the first and last months, the largest legacy CMND (and its month).
-- IDENTIFYING (names, CCCD, birth dates, salaries): intermediate schema, never in the analysts' file.
--
-- A build from nothing (or one that restates every month) aggregates all history. A build that restates the
-- months from W on (restate_start_sql) starts from the stored table and combines, per person, the stored
-- summary with the restated months' summary. That is exact because the stored months before W did not change:
-- a latest row in the window beats any earlier one; a stored first month, minimum or maximum still holds when the
-- month it came from is before W. People for whom that cannot be told (a stored latest month, join date or CMND
-- from a restated month that the window no longer has; records whose key merged or split) are re-aggregated from
-- all their history. Pure re-keys (int_member_key_changes.is_pure_rename) just rename the stored row.
{%- set start = restate_from() %}
{%- set window_start_sql = restate_start_sql(start) if start is not none else none %}
{%- set previous = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) if this is not none else none %}
{%- set combine = previous is not none and start is not none and not flags.FULL_REFRESH %}
{%- set window_start = none %}
{%- if combine and execute %}
  {%- set window_start = run_query('select cast(' ~ window_start_sql ~ ' as date)').columns[0].values()[0] %}
{%- endif %}




with keys as (
    select distinct member_key from {{ ref('int_member_keys') }}
),

{%- if not combine %}

months as ({{ member_states_month_summary('1 = 1') }}),
rosters as ({{ member_states_roster_summary('1 = 1') }}),

states as (
    select coalesce(m.member_key, r.member_key) as member_key, {{ member_states_flatten('m', 'r') }}
    from months as m
    full outer join rosters as r on r.member_key = m.member_key
)

{%- else %}

renames as (
    select distinct previous_member_key, member_key
    from {{ ref('int_member_key_changes') }} where is_pure_rename
),

merged_or_split as (
    -- keys whose records merged or split: their summary is re-aggregated from all history
    select member_key from {{ ref('int_member_key_changes') }} where not is_pure_rename
    union
    select previous_member_key from {{ ref('int_member_key_changes') }} where not is_pure_rename
),

old as (
    select s.* replace (coalesce(rn.member_key, s.member_key) as member_key)
    from {{ previous }} as s
    left join renames as rn on rn.previous_member_key = s.member_key
),

window_months as ({{ member_states_month_summary("period >= cast('" ~ window_start ~ "' as date)") }}),
window_rosters as ({{ member_states_roster_summary("r.period >= cast('" ~ window_start ~ "' as date)") }}),

recompute as (
    select member_key from merged_or_split
    union
    select o.member_key
    from old as o
    left join window_months as wm on wm.member_key = o.member_key
    left join window_rosters as wr on wr.member_key = o.member_key
    where (o.m_last_period >= cast('{{ window_start }}' as date) and wm.member_key is null)
       or (o.r_last_period >= cast('{{ window_start }}' as date) and wr.member_key is null)
       or (o.m_first_join_period >= cast('{{ window_start }}' as date) and o.m_first_period < cast('{{ window_start }}' as date))
       or (o.r_cmnd_period >= cast('{{ window_start }}' as date) and o.r_first_period < cast('{{ window_start }}' as date))
),

-- what the stored summary says of the months before the window (valid for people not recomputed)
before as (
    select
        o.*,
        case when o.m_first_period < cast('{{ window_start }}' as date) then o.m_first_period end as b_m_first_period,
        case when o.r_first_period < cast('{{ window_start }}' as date) then o.r_first_period end as b_r_first_period
    from old as o
    where o.member_key not in (select member_key from recompute)
),

combined as (
    select
        coalesce(b.member_key, wm.member_key, wr.member_key)               as member_key,
        -- latest month: the window's when the person has one there, else the stored one
        case when wm.member_key is not null then wm.m_last_period else b.m_last_period end as m_last_period,
        case when wm.member_key is not null then wm.m_cdcs_code else b.m_cdcs_code end     as m_cdcs_code,
        case when wm.member_key is not null then wm.m_gender else b.m_gender end           as m_gender,
        case when wm.member_key is not null then wm.m_birth_date else b.m_birth_date end   as m_birth_date,
        least(b.b_m_first_period, wm.m_first_period)                       as m_first_period,
        case when b.b_m_first_period is null or b.m_first_join_date is null then wm.m_first_join_date
             when wm.m_first_join_date is null then b.m_first_join_date
             else least(b.m_first_join_date, wm.m_first_join_date) end    as m_first_join_date,
        case when b.b_m_first_period is null or b.m_first_join_date is null then wm.m_first_join_period
             when wm.m_first_join_date is null or b.m_first_join_date <= wm.m_first_join_date
                  then b.m_first_join_period
             else wm.m_first_join_period end                               as m_first_join_period,
        case when wr.member_key is not null then wr.latest.identity_id else b.r_identity_id end as r_identity_id,
        case when wr.member_key is not null then wr.latest.full_name else b.r_full_name end     as r_full_name,
        case when wr.member_key is null then b.r_name_search
             when wr.latest.full_name = b.r_full_name then b.r_name_search
             else {{ name_search('wr.latest.full_name') }} end            as r_name_search,
        {%- for c in ['birth_date', 'birth_date_precision', 'gender', 'ethnicity_code', 'bhxh_code', 'member_code',
                      'cdcs_code', 'insurance_salary', 'join_date'] %}
        case when wr.member_key is not null then wr.latest.{{ c }} else b.r_{{ c }} end as r_{{ c }},
        {%- endfor %}
        least(b.b_r_first_period, wr.r_first_period)                       as r_first_period,
        case when wr.member_key is not null then wr.r_last_period else b.r_last_period end as r_last_period,
        case when b.b_r_first_period is null or b.r_cmnd is null then wr.r_cmnd
             when wr.r_cmnd is null then b.r_cmnd
             else greatest(b.r_cmnd, wr.r_cmnd) end                        as r_cmnd,
        case when b.b_r_first_period is null or b.r_cmnd is null then wr.r_cmnd_period
             when wr.r_cmnd is null or b.r_cmnd >= wr.r_cmnd then b.r_cmnd_period
             else wr.r_cmnd_period end                                     as r_cmnd_period
    from before as b
    full outer join (select * from window_months where member_key not in (select member_key from recompute)) as wm
      on wm.member_key = b.member_key
    full outer join (select * from window_rosters where member_key not in (select member_key from recompute)) as wr
      on wr.member_key = coalesce(b.member_key, wm.member_key)
),

recomputed_months as ({{ member_states_month_summary('member_key in (select member_key from recompute)') }}),
recomputed_rosters as ({{ member_states_roster_summary('k.member_key in (select member_key from recompute)') }}),

states as (
    select * from combined
    union all
    select coalesce(m.member_key, r.member_key) as member_key, {{ member_states_flatten('m', 'r') }}
    from recomputed_months as m
    full outer join recomputed_rosters as r on r.member_key = m.member_key
)

{%- endif %}

select s.*
from states as s
semi join keys on keys.member_key = s.member_key
