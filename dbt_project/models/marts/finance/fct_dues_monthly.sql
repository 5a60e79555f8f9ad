{{ config(**monthly_restatement(dated=false, units=true)) }}
{#- the tables restate_bounds reads, ref()'d whatever the run (dbt records dependencies at parse time) #}
{%- set _dependencies = [ref('int_roster_branch_months'), ref('int_member_key_changes')] %}
{%- set b = restate_bounds(dated=false) %}
{%- set targeted = b is not none and b.k is not none %}
{%- if targeted %}
  {%- set w = "cast('" ~ b.w ~ "' as date)" %}
  {%- set k = "cast('" ~ b.k ~ "' as date)" %}
  {%- set units = restated_units_sql(b) %}
{%- endif %}
-- grain: one period × CĐCS (cdcs_code) with members in the month's roster (carried forward when the
-- branch did not submit) or a line in the month's dues report.
-- dues_expected = Σ over members of min(round(rate × insurance_salary), cap), with the rate and the cap
-- (base salary × cap multiplier) of the rule in force that month (dues_rules); dues_collected comes from
-- the branch's current dues report of the month.
-- A member owes dues once a month, in the CĐCS where they are a member at month end. A person listed in two
-- CĐCS (moved while the old unit's roster is carried forward) owes them where a roster sent for the month
-- lists them (the branch's own report of the month, not the repeat of an older roster), then by the
-- counted-once order of int_member_unit_months; so members here can differ from fct_membership_monthly,
-- which keeps the person in the old unit until its branch reports again.
-- A build that merged or split people before its window restates, in those months, the CĐCS where they have
-- month-end rows only (restated_units_sql): every person with a row there, all their rows read for the order.
with
{%- if targeted %}
restated_units as (
    {{ units }}
),
{%- endif %}

rules as (
    select
        valid_from,
        valid_to,
        rate,
        base_salary,
        cast(round(base_salary * cap_multiplier) as bigint) as dues_cap
    from {{ ref('dues_rules') }}
),

member_units as (
    select
        period,
        cdcs_code,
        insurance_salary,
        row_number() over (
            partition by member_key, period
            order by case when is_carried_forward then 1 else 0 end, unit_rank
        ) as dues_rank
    from {{ ref('int_member_unit_months') }}
    {%- if targeted %}
    where period >= {{ w }}
       or (period >= {{ k }} and period < {{ w }}
           and member_key in (select member_key from {{ ref('int_member_unit_months') }}
                              where period >= {{ k }} and period < {{ w }} and cdcs_code in (select cdcs_code from restated_units)))
    {%- else %}
    where {{ restated_where('period', dated=false) }}
    {%- endif %}
),

member_dues as (
    select
        m.period,
        m.cdcs_code,
        m.insurance_salary,
        r.rate,
        r.base_salary,
        r.dues_cap,
        case
            when m.insurance_salary is null or r.rate is null then 0
            else least(cast(round(m.insurance_salary * r.rate) as bigint), r.dues_cap)
        end as dues_due
    from member_units as m
    left join rules as r
      on m.period >= r.valid_from and (r.valid_to is null or m.period <= r.valid_to)
    where m.dues_rank = 1
    {%- if targeted %}
      and (m.period >= {{ w }} or m.cdcs_code in (select cdcs_code from restated_units))
    {%- endif %}
),

from_roster as (
    select
        period,
        cdcs_code,
        count(*)                               as members,
        sum(coalesce(insurance_salary, 0))     as salary_fund,
        sum(dues_due)                          as dues_expected
    from member_dues
    group by period, cdcs_code
),

current_dues_files as (
    select file_id from {{ ref('int_file_versions_ranked') }}
    where kind = 'dues' and is_current_version
),

reported as (
    select
        d.period,
        d.cdcs_code,
        sum(d.reported_members)        as reported_members,
        sum(d.reported_salary_fund)    as reported_salary_fund,
        sum(d.reported_dues_expected)  as reported_dues_expected,
        sum(d.dues_collected)          as dues_collected
    from {{ ref('stg_raw__dues_reports') }} as d
    join current_dues_files as f on f.file_id = d.file_id
    {%- if targeted %}
    where (d.period >= {{ w }} or (d.period >= {{ k }} and d.cdcs_code in (select cdcs_code from restated_units)))
      and {{ raw_file_month_floor('d.file_month', k) }}
    {%- else %}
    where {{ restated_where('d.period', dated=false) }}
      and {{ raw_file_month_floor('d.file_month', restated_start(dated=false)) }}
    {%- endif %}
    group by d.period, d.cdcs_code
),

combined as (
    select
        coalesce(r.period, p.period)            as period,
        coalesce(r.cdcs_code, p.cdcs_code)      as cdcs_code,
        coalesce(r.members, 0)                  as members,
        coalesce(r.salary_fund, 0)              as salary_fund,
        coalesce(r.dues_expected, 0)            as dues_expected,
        p.dues_collected,
        p.reported_members,
        p.reported_salary_fund,
        p.reported_dues_expected,
        p.cdcs_code is not null                 as has_dues_report
    from from_roster as r
    full outer join reported as p
      on p.period = r.period and p.cdcs_code = r.cdcs_code
)

select
    cast(c.period as date)                              as period,
    cast(c.cdcs_code as {{ dbt.type_string() }})        as cdcs_code,
    s.top_unit_code,
    s.upper_unit_code,
    s.province_old_code,
    s.province_new_code,
    s.ownership_type,
    s.industry_code,
    cast(c.members as bigint)                           as members,
    cast(c.salary_fund as bigint)                       as salary_fund,
    cast(c.dues_expected as bigint)                     as dues_expected,
    cast(c.dues_collected as bigint)                    as dues_collected,
    cast(c.dues_expected - coalesce(c.dues_collected, 0) as bigint) as arrears,
    cast(c.reported_members as bigint)                  as reported_members,
    cast(c.reported_salary_fund as bigint)              as reported_salary_fund,
    cast(c.reported_dues_expected as bigint)            as reported_dues_expected,
    c.has_dues_report,
    r.rate                                              as dues_rate,
    cast(r.base_salary as bigint)                       as base_salary,
    r.dues_cap                                          as dues_cap
from combined as c
left join rules as r
  on c.period >= r.valid_from and (r.valid_to is null or c.period <= r.valid_to)
left join {{ ref('int_cdcs_scope_months') }} as s
  on s.cdcs_code = c.cdcs_code and s.period = c.period
