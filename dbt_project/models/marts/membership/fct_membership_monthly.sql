{{ config(**monthly_restatement()) }}
-- grain: one period × CĐCS (cdcs_code) with members at month end or an event in the month.
-- Members come from the CĐCS's roster of that month, or its branch's last roster carried forward
-- (is_carried_forward); events from roster diffs (int_member_events).
with members as (
    select
        period,
        cdcs_code,
        count(*)                                                    as members,
        sum(case when gender = 'F' then 1 else 0 end)               as women,
        sum(case when ethnicity_code is not null and ethnicity_code <> '01' then 1 else 0 end) as ethnic_minority_members,
        max(case when is_carried_forward then 1 else 0 end) = 1     as is_carried_forward,
        max(branch_code)                                            as branch_code
    from {{ ref('int_member_months') }}
    where {{ period_window('period') }}
    group by period, cdcs_code
),

events as (
    select
        period,
        cdcs_code,
        sum(case when event_type = 'join' then 1 else 0 end)          as joins,
        sum(case when event_type = 'leave' then 1 else 0 end)         as leaves,
        {%- for reason in leave_reason_codes() %}
        sum(case when event_type = 'leave' and leave_reason_code = '{{ reason }}' then 1 else 0 end) as leaves_{{ reason }},
        {%- endfor %}
        sum(case when event_type = 'transfer_in' then 1 else 0 end)   as transfers_in,
        sum(case when event_type = 'transfer_out' then 1 else 0 end)  as transfers_out
    from {{ ref('int_member_events') }}
    where {{ period_window('period') }}
    group by period, cdcs_code
),

combined as (
    select
        coalesce(m.period, e.period)          as period,
        coalesce(m.cdcs_code, e.cdcs_code)    as cdcs_code,
        m.branch_code,
        coalesce(m.members, 0)                as members,
        coalesce(m.women, 0)                  as women,
        coalesce(m.ethnic_minority_members, 0) as ethnic_minority_members,
        coalesce(e.joins, 0)                  as joins,
        coalesce(e.leaves, 0)                 as leaves,
        {%- for reason in leave_reason_codes() %}
        coalesce(e.leaves_{{ reason }}, 0)    as leaves_{{ reason }},
        {%- endfor %}
        coalesce(e.transfers_in, 0)           as transfers_in,
        coalesce(e.transfers_out, 0)          as transfers_out,
        coalesce(m.is_carried_forward, false) as is_carried_forward
    from members as m
    full outer join events as e
      on e.period = m.period and e.cdcs_code = m.cdcs_code
)

select
    cast(c.period as date)                          as period,
    cast(c.cdcs_code as {{ dbt.type_string() }})    as cdcs_code,
    s.unit_version_key,
    s.top_unit_code,
    s.upper_unit_code,
    s.province_old_code,
    s.province_new_code,
    s.sector_code,
    s.ownership_type,
    s.industry_code,
    s.employer_code,
    c.branch_code,
    cast(c.members as bigint)                       as members,
    cast(c.women as bigint)                         as women,
    cast(c.ethnic_minority_members as bigint)       as ethnic_minority_members,
    cast(c.joins as bigint)                         as joins,
    cast(c.leaves as bigint)                        as leaves,
    {%- for reason in leave_reason_codes() %}
    cast(c.leaves_{{ reason }} as bigint)           as leaves_{{ reason }},
    {%- endfor %}
    cast(c.transfers_in as bigint)                  as transfers_in,
    cast(c.transfers_out as bigint)                 as transfers_out,
    c.is_carried_forward
from combined as c
left join {{ ref('int_cdcs_scope_months') }} as s
  on s.cdcs_code = c.cdcs_code and s.period = c.period
