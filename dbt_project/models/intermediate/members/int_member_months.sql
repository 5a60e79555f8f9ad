-- grain: one member_key × period: a person active at month end, counted once, at one CĐCS
-- (unit_rank = 1 of int_member_unit_months).
select
    period,
    member_key,
    cdcs_code,
    branch_code,
    report_period,
    is_carried_forward,
    gender,
    birth_date,
    ethnicity_code,
    join_date,
    insurance_salary,
    n_units > 1 as has_unit_conflict
from {{ ref('int_member_unit_months') }}
where unit_rank = 1
