-- grain: one month (period) between the first and the last month of any accepted file.
with bounds as (
    select min(period) as first_period, max(period) as last_period
    from {{ ref('stg_raw__files') }}
    where status = 'accepted'
)
select s.period
from bounds
cross join {{ month_series('bounds.first_period', 'bounds.last_period') }} as s
where bounds.first_period is not null
