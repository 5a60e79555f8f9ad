{{ config(materialized='table') }}
-- grain: one person (member_key) counted at some month end. Their month-end membership summarised
-- (int_member_months, carried-forward months included): the latest month with its CĐCS, gender and birth date,
-- the first month, the earliest join date and the first month it was written. dim_member projects it.
--
-- Kept up to date month by month instead of re-aggregating every month of history: a build that restates the
-- months from W (restate_bounds(dated=false).w) combines each person's stored summary with the summary of the months from W.
-- That is exact because the stored months before W did not change: a latest month in the window beats any earlier
-- one; a stored first month or earliest join date still holds when the month it came from is before W. People for
-- whom that cannot be told (a stored latest month in the window that the window no longer has, an earliest join
-- date first written in the window, keys that merged or split) are re-aggregated from all their months; that part
-- is left out when the stored table shows it cannot be needed. Pure re-keys rename the stored row. A build from
-- nothing, or one that restates every month, aggregates all history.
{%- set start = restate_from() %}
{#- the tables the window start reads (restate_bounds), ref()'d whatever the run: dbt records a model's
    dependencies when it parses the project, where restate_from() is empty #}
{%- set _dependencies = [ref('int_roster_branch_months'), ref('int_member_key_changes')] %}
{%- set key_changes = ref('int_member_key_changes') %}
{%- set previous = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier)
      if this is not none else none %}
{%- set combine = previous is not none and start is not none and not flags.FULL_REFRESH %}
{%- set w, recompute = none, true %}
{%- if combine and execute %}
  {#- the months restated for everyone (restate_bounds.w): merged or split people's months before it changed too,
      but those people are re-aggregated from all history (recompute) -#}
  {%- set w = restate_bounds(dated=false).w %}
  {%- set f = run_query("select exists (select 1 from " ~ key_changes ~ " where not is_pure_rename) "
        ~ "or exists (select 1 from " ~ previous ~ " where m_last_period >= cast('" ~ w ~ "' as date) "
        ~ "or (m_first_join_period >= cast('" ~ w ~ "' as date) and m_first_period < cast('" ~ w ~ "' as date)))").rows[0] %}
  {%- set recompute = f[0] %}
{%- endif %}

{%- if not combine %}

{{ member_states_month_summary('1 = 1') }}

{%- else %}

with window_months as (
    {{ member_states_month_summary("period >= cast('" ~ w ~ "' as date)") }}
),

stored as (
    {{ member_states_stored(previous, key_changes) }}
),

recompute as (
    {{ member_states_merged_keys(key_changes) }}
    {%- if recompute %}
    union
    -- a stored latest month in the window that the window no longer has
    select member_key from stored
    where m_last_period >= cast('{{ w }}' as date)
      and member_key not in (select member_key from {{ ref('int_member_months') }} where period >= cast('{{ w }}' as date))
    union
    -- an earliest join date first written in the window, with months before it
    select member_key from stored
    where m_first_join_period >= cast('{{ w }}' as date) and m_first_period < cast('{{ w }}' as date)
    {%- endif %}
)

select
    coalesce(b.member_key, wm.member_key)                                  as member_key,
    -- latest month: the window's when the person has one there, else the stored one
    case when wm.member_key is not null then wm.m_last_period else b.m_last_period end as m_last_period,
    case when wm.member_key is not null then wm.m_cdcs_code else b.m_cdcs_code end     as m_cdcs_code,
    case when wm.member_key is not null then wm.m_gender else b.m_gender end           as m_gender,
    case when wm.member_key is not null then wm.m_birth_date else b.m_birth_date end   as m_birth_date,
    -- first month and earliest join date: the stored ones when they come from before the window
    least(b.b_first_period, wm.m_first_period)                             as m_first_period,
    case when b.b_first_period is null or b.m_first_join_date is null then wm.m_first_join_date
         when wm.m_first_join_date is null then b.m_first_join_date
         else least(b.m_first_join_date, wm.m_first_join_date) end        as m_first_join_date,
    case when b.b_first_period is null or b.m_first_join_date is null then wm.m_first_join_period
         when wm.m_first_join_date is null or b.m_first_join_date <= wm.m_first_join_date then b.m_first_join_period
         else wm.m_first_join_period end                                   as m_first_join_period
from (
    select *, case when m_first_period < cast('{{ w }}' as date) then m_first_period end as b_first_period
    from stored
    where member_key not in (select member_key from recompute)
) as b
full outer join (select * from window_months where member_key not in (select member_key from recompute)) as wm
  on wm.member_key = b.member_key
union all
{{ member_states_month_summary('member_key in (select member_key from recompute)' if recompute else 'false') }}

{%- endif %}
