-- grain: one row of fct_service_deliveries (delivery_id) whose member_key occurs in more than one of its rows
-- (any month, any programme); the same columns and values as the fact. Health-related rows (no member_key) are
-- never here.
-- Why: a member with a single row in the fact is distinct from every other row, so the beneficiaries of any slice
-- (scope, months, filters, programme) = rows of the fact with a member_key in the slice − rows of this table in
-- the slice + distinct member_key of this table in the slice: exact, with the distinct count over a few % of the
-- rows. A table rebuilt from the whole fact on every run, so it stays exact when an incremental run restates only
-- some months.
with repeated as (
    select member_key
    from {{ ref('fct_service_deliveries') }}
    where member_key is not null
    group by member_key
    having count(*) > 1
)

select
    f.delivery_id,
    f.period,
    f.service_date,
    f.member_key,
    f.cdcs_code,
    f.program_code,
    f.is_health_related,
    f.amount,
    f.branch_code,
    f.top_unit_code,
    f.upper_unit_code,
    f.province_old_code,
    f.province_new_code,
    f.ownership_type,
    f.industry_code
from {{ ref('fct_service_deliveries') }} as f
where f.member_key in (select member_key from repeated)
