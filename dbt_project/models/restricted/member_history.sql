{{ config(**monthly_restatement(people='merged', dated=false)) }}
-- grain: one member_key × period × CĐCS (cdcs_code) where the person is counted at month end, with the
-- insurance salary and the dues due under the rule in force. RESTRICTED (salaries), for member lookups
-- through pipelines.access. Incremental by period: a monthly refresh writes one month (and the months before it of
-- people it merged or split).
with rules as (
    select valid_from, valid_to, rate, cast(round(base_salary * cap_multiplier) as bigint) as dues_cap
    from {{ ref('dues_rules') }}
)

select
    {{ member_key_text('m.member_key') }}      as member_key,
    cast(m.period as date)                     as period,
    m.cdcs_code,
    m.is_carried_forward,
    m.insurance_salary,
    r.rate                                     as dues_rate,
    r.dues_cap,
    cast(case
        when m.insurance_salary is null or r.rate is null then 0
        else least(cast(round(m.insurance_salary * r.rate) as bigint), r.dues_cap)
    end as bigint)                             as dues_due
from (
    {{ restated_rows_of(ref('int_member_months'), 'merged', dated=false) }}
) as m
left join rules as r
  on m.period >= r.valid_from and (r.valid_to is null or m.period <= r.valid_to)
