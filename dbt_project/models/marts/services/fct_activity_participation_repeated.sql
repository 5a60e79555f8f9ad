-- grain: one row of fct_activity_participation (participation_id) whose member_key occurs in more than one of its
-- rows (any month, any activity type); the same columns and values as the fact.
-- Why: a member with a single row in the fact is distinct from every other row, so the participants of any slice
-- (scope, months, filters, activity type) = rows of the fact in the slice − rows of this table in the slice
-- + distinct member_key of this table in the slice: exact, and the distinct count runs over a few % of the rows
-- (count(distinct) over every row was the services page's cost at national scale). A table rebuilt from the
-- whole fact on every run, so it stays exact when an incremental run restates only some months.
with repeated as (
    select member_key
    from {{ ref('fct_activity_participation') }}
    where member_key is not null
    group by member_key
    having count(*) > 1
)

select
    f.participation_id,
    f.period,
    f.activity_date,
    f.activity_type,
    f.activity_name,
    f.member_key,
    f.cdcs_code,
    f.branch_code,
    f.top_unit_code,
    f.upper_unit_code,
    f.province_old_code,
    f.province_new_code,
    f.ownership_type,
    f.industry_code
from {{ ref('fct_activity_participation') }} as f
where f.member_key in (select member_key from repeated)
