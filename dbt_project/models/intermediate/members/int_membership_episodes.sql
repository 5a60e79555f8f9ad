{{ config(materialized='table') }}  -- no model reads it, but its tests did, each recomputing every episode of all history
-- grain: one membership episode (SCD2): member_key × cdcs_code × valid_from — an unbroken run of months in
-- which the person counts in one CĐCS, opened by a join or a transfer_in (or 'opening' when the person is
-- already there when the data starts) and closed by a leave (with its reason) or a transfer_out, or still
-- open (valid_to null). Built from the monthly snapshots and the events (a table: computed once per build).
with months as (
    select member_key, cdcs_code, period
    from {{ ref('int_member_months') }}
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
    select member_key, cdcs_code, period, event_type, event_date, leave_reason_code, other_cdcs_code
    from {{ ref('int_member_events') }}
),

last_period as (
    select max(period) as period from months
)

select
    r.member_key || '|' || r.cdcs_code || '|' || cast(r.first_period as {{ dbt.type_string() }}) as episode_id,
    r.member_key,
    r.cdcs_code,
    coalesce(s.event_type, 'opening')                             as start_event_type,
    s.other_cdcs_code                                             as from_cdcs_code,
    coalesce(s.event_date, r.first_period)                        as valid_from,
    e.event_type                                                  as end_event_type,
    e.leave_reason_code,
    e.other_cdcs_code                                             as to_cdcs_code,
    case when e.event_type is not null then e.event_date
         when r.last_period < (select period from last_period) then {{ month_end('r.last_period') }}
    end                                                           as valid_to,
    r.first_period,
    r.last_period,
    r.months,
    e.event_type is null and r.last_period = (select period from last_period) as is_current
from runs as r
left join events as s
  on s.member_key = r.member_key and s.cdcs_code = r.cdcs_code and s.period = r.first_period
 and s.event_type in ('join', 'transfer_in')
left join events as e
  on e.member_key = r.member_key and e.cdcs_code = r.cdcs_code
 and e.period = cast({{ dbt.dateadd('month', 1, 'r.last_period') }} as date)
 and e.event_type in ('leave', 'transfer_out')
