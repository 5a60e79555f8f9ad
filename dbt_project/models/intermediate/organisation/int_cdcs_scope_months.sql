-- grain: one CĐCS × period: the CĐCS's registry version in force at the month's end (or, for a month
-- after it closed, its last version), with its scope columns for drill-down and row-level access.
with cdcs_versions as (
    select * from {{ ref('int_union_units_resolved') }}
    where unit_level = 'cdcs'
),

periods as (
    select period from {{ ref('int_periods') }}
),

candidates as (
    select
        p.period,
        v.*,
        row_number() over (partition by v.unit_code, p.period order by v.valid_from desc) as rn
    from periods as p
    join cdcs_versions as v
      on v.valid_from <= {{ month_end('p.period') }}
)

select
    period,
    unit_code                  as cdcs_code,
    unit_version_key,
    top_unit_code,
    upper_unit_code,
    province_old_code,
    province_new_code,
    sector_code,
    ownership_type,
    industry_code,
    employer_code,
    valid_from,
    valid_to,
    (valid_to is null or valid_to >= {{ month_end('period') }}) as is_open_at_month_end
from candidates
where rn = 1
