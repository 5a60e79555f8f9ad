{{ config(
    materialized='incremental',
    incremental_strategy='replace_people',
    on_schema_change='fail',
    pre_hook=["{{ episodes_affected_keys() }}"],
    post_hook=["{{ episodes_extend_open() }}"]
) }}
-- grain: one membership episode (SCD2): member_key × cdcs_code × valid_from — an unbroken run of months in
-- which the person counts in one CĐCS, opened by a join or a transfer_in (or 'opening' when the person is
-- already there when the data starts) and closed by a leave (with its reason) or a transfer_out, or still
-- open (valid_to null). Built from the monthly snapshots and the events. No model reads it.
--
-- Kept in place month by month (macros/episodes.sql): a build that restates the months from W on
-- (restate_start_sql) recomputes the episodes of the people the restated months can affect (an event from W on,
-- an entry without one, a stored episode starting or closing in the window, a key change) and replaces only their
-- rows; everyone else's episodes are unchanged but for an open episode's last month and length, updated in
-- place. For an affected person: the stored episodes that ended before the month L = W - 1 are kept (their months
-- and closing events are before W, so they did not change), the runs of months from L on are recomputed, and a
-- run that contains L takes the first month and opening of the stored episode that contained L (those months are
-- before W too). Pure re-keys rename the stored episodes. A build from nothing, or one that restates every month,
-- computes every episode of all history.
{%- set win = episodes_window() %}
{#- the tables the window start reads (restate_start_sql) and the affected people's sources, ref()'d whatever the
    run: dbt records a model's dependencies when it parses the project, where restate_from() is empty #}
{%- set _dependencies = [ref('int_roster_branch_months'), ref('int_member_key_changes'), ref('int_member_unit_months'),
                          ref('int_restated_people')] %}
{%- set combine = win is not none %}
{%- set affected = episodes_affected_relation() %}

with months as (
    select m.member_key, m.cdcs_code, m.period
    from {{ ref('int_member_months') }} as m
    {%- if combine %}
    -- each affected person's months from their L (lookback_from: W - 1, or the month before k for people merged
    -- or split before the window)
    join {{ affected }} as a
      on a.member_key = m.member_key and m.period >= a.lookback_from
    where m.period >= cast('{{ win.kl or win.l }}' as date)
    {%- endif %}
),

islands as (
    -- consecutive months in the same CĐCS share the same anchor month
    select
        member_key,
        cdcs_code,
        period,
        cast({{ dbt.dateadd('month', '-1 * row_number() over (partition by member_key, cdcs_code order by period)', 'period') }} as date) as anchor
    from months
),

runs as (
    select member_key, cdcs_code, min(period) as first_period, max(period) as last_period, count(*) as months
    from islands
    group by member_key, cdcs_code, anchor
),

events as (
    select e.member_key, e.cdcs_code, e.period, e.event_type, e.event_date, e.leave_reason_code, e.other_cdcs_code
    from {{ ref('int_member_events') }} as e
    {%- if combine %}
    -- the events that open or close a run from L on
    join {{ affected }} as a
      on a.member_key = e.member_key and e.period >= a.lookback_from
    where e.period >= cast('{{ win.kl or win.l }}' as date)
    {%- endif %}
),

last_period as (
    select max(period) as period from {{ ref('int_member_months') }}
),

{%- if combine %}

stored as (
    select s.*, a.lookback_from
    from ({{ member_states_stored(this, ref('int_member_key_changes')) }}) as s
    join {{ affected }} as a on a.member_key = s.member_key
),

containing as (
    -- the stored episode that contains the person's month L: a recomputed run starting at L continues it
    select member_key, cdcs_code, first_period, start_event_type, from_cdcs_code, valid_from, lookback_from
    from stored
    where first_period <= lookback_from and last_period >= lookback_from
),

{%- endif %}

recomputed as (
    select
        r.member_key,
        r.cdcs_code,
        {%- if combine %}
        coalesce(c.start_event_type, s.event_type, 'opening')      as start_event_type,
        case when c.member_key is not null then c.from_cdcs_code else s.other_cdcs_code end as from_cdcs_code,
        case when c.member_key is not null then c.valid_from
             else coalesce(s.event_date, r.first_period) end        as valid_from,
        {%- else %}
        coalesce(s.event_type, 'opening')                           as start_event_type,
        s.other_cdcs_code                                           as from_cdcs_code,
        coalesce(s.event_date, r.first_period)                      as valid_from,
        {%- endif %}
        e.event_type                                                as end_event_type,
        e.leave_reason_code,
        e.other_cdcs_code                                           as to_cdcs_code,
        case when e.event_type is not null then e.event_date
             when r.last_period < (select period from last_period) then {{ month_end('r.last_period') }}
        end                                                         as valid_to,
        {%- if combine %}
        coalesce(c.first_period, r.first_period)                    as first_period,
        r.last_period,
        cast({{ dbt.datediff('coalesce(c.first_period, r.first_period)', 'r.last_period', 'month') }} + 1 as bigint) as months,
        {%- else %}
        r.first_period,
        r.last_period,
        r.months,
        {%- endif %}
        e.event_type is null and r.last_period = (select period from last_period) as is_current
    from runs as r
    {%- if combine %}
    left join containing as c
      on c.member_key = r.member_key and c.cdcs_code = r.cdcs_code
     and r.first_period = c.lookback_from
    {%- endif %}
    left join events as s
      on s.member_key = r.member_key and s.cdcs_code = r.cdcs_code and s.period = r.first_period
     and s.event_type in ('join', 'transfer_in')
    left join events as e
      on e.member_key = r.member_key and e.cdcs_code = r.cdcs_code
     and e.period = cast({{ dbt.dateadd('month', 1, 'r.last_period') }} as date)
     and e.event_type in ('leave', 'transfer_out')
),

episodes as (
    select * from recomputed
    {%- if combine %}
    union all
    select
        member_key, cdcs_code, start_event_type, from_cdcs_code, valid_from, end_event_type, leave_reason_code,
        to_cdcs_code, valid_to, first_period, last_period, months, is_current
    from stored
    where last_period < lookback_from
    {%- endif %}
)

select
    member_key || '|' || cdcs_code || '|' || cast(first_period as {{ dbt.type_string() }}) as episode_id,
    member_key,
    cdcs_code,
    start_event_type,
    from_cdcs_code,
    valid_from,
    end_event_type,
    leave_reason_code,
    to_cdcs_code,
    valid_to,
    first_period,
    last_period,
    months,
    is_current
from episodes
