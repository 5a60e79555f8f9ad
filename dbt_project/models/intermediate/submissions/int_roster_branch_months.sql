{{ config(materialized='table') }}
-- grain: one roster-sending branch × month, from the first to the last month any roster was accepted.
-- Carry-forward: a month a branch did not submit takes its last accepted roster (source_file_id),
-- flagged is_carried_forward; a branch that never submitted has no source file. A roster accepted with no
-- accepted row at all (every row refused) cannot be the branch's membership: it counts as not submitted.
with current_rosters as (
    select branch_code, period, file_id
    from {{ ref('int_file_versions_ranked') }}
    where kind = 'roster' and is_current_version and coalesce(rows_accepted, 0) > 0
),

bounds as (
    select min(period) as first_period, max(period) as last_period from current_rosters
),

months as (
    select s.period
    from bounds
    cross join {{ month_series('bounds.first_period', 'bounds.last_period') }} as s
    where bounds.first_period is not null
),

registry_branches as (
    select branch_code, valid_from, valid_to
    from {{ ref('stg_registry__branches') }}
    where branch_code <> 'BHXH'
),

branch_months as (
    -- a registered branch is expected in every month it is valid
    select months.period, b.branch_code
    from months
    join registry_branches as b
      on b.valid_from <= {{ month_end('months.period') }}
     and (b.valid_to is null or b.valid_to >= months.period)
    union
    -- a branch that sent a roster is in the spine for that month even when the registry lacks it
    select period, branch_code from current_rosters
),

as_of as (
    select
        bm.branch_code,
        bm.period,
        r.period  as source_period,
        r.file_id as source_file_id,
        row_number() over (partition by bm.branch_code, bm.period order by r.period desc) as rn
    from branch_months as bm
    left join current_rosters as r
      on r.branch_code = bm.branch_code
     and r.period <= bm.period
)

select
    branch_code,
    period,
    source_period,
    source_file_id,
    source_period = period                                   as is_submitted,
    coalesce(source_period < period, false)                  as is_carried_forward,
    source_period is null                                    as has_no_roster
from as_of
where rn = 1
