-- grain: one calendar day (date_day) from 2015-01-01 to 2035-12-31, with the month (period), the
-- statutory report dates and the dues rule in force.
with days as (
    {{ dbt.date_spine('day', "cast('2015-01-01' as date)", "cast('2036-01-01' as date)") }}
),

rules as (
    select * from {{ ref('dues_rules') }}
)

select
    cast(d.date_day as date)                                              as date_day,
    cast({{ dbt.date_trunc('month', 'd.date_day') }} as date)             as period,
    cast(extract(year from d.date_day) as integer)                        as year,
    cast(extract(month from d.date_day) as integer)                       as month,
    cast(extract(quarter from d.date_day) as integer)                     as quarter,
    case when extract(month from d.date_day) <= 6 then 1 else 2 end       as half_year,
    cast(extract(day from d.date_day) as integer)                         as day_of_month,
    cast(d.date_day as date) = {{ month_end('d.date_day') }}             as is_month_end,
    (extract(month from d.date_day) = 5 and extract(day from d.date_day) = 31)
      or (extract(month from d.date_day) = 11 and extract(day from d.date_day) = 30) as is_statutory_report_date,
    cast(d.date_day as date) >= cast('2025-07-01' as date)                as is_after_restructuring,
    r.rate                                                                as dues_rate,
    r.base_salary                                                         as base_salary,
    cast(round(r.base_salary * r.cap_multiplier) as bigint)               as dues_cap
from days as d
left join rules as r
  on cast(d.date_day as date) >= r.valid_from
 and (r.valid_to is null or cast(d.date_day as date) <= r.valid_to)
