{{ config(**monthly_restatement(people='restated')) }}
{#- the tables restate_bounds reads, ref()'d whatever the run (dbt records dependencies at parse time) #}
{%- set _dependencies = [ref('int_roster_branch_months'), ref('int_member_key_changes'), ref('int_restated_people')] %}
{%- set b = restate_bounds() %}
-- grain: one membership event (event_id = hash of member_key, period, event_type, cdcs_code):
-- join, leave (with reason), transfer_in, transfer_out, as seen in the month's rosters.
with events as (
    select * replace ({{ member_key_text('member_key') }} as member_key) from {{ ref('int_member_events') }}
    {%- if b is not none and b.k is not none %}
    where period >= cast('{{ b.w }}' as date)
    union all
    -- the events int_member_events restated before the window (int_restated_people, restate_bounds)
    select * replace ({{ member_key_text('member_key') }} as member_key) from {{ ref('int_member_events') }}
    where period >= cast('{{ b.k }}' as date) and period < cast('{{ b.w }}' as date)
      and member_key in ({{ restated_people_sql('restated') }})
    {%- else %}
    where {{ period_window('period') }}
    {%- endif %}
)

select
    {{ member_event_id('e.member_key', 'e.period', 'e.event_type', 'e.cdcs_code') }} as event_id,
    e.member_key,
    cast(e.event_date as date)                        as event_date,
    cast(e.period as date)                            as period,
    e.event_type,
    e.leave_reason_code,
    e.cdcs_code,
    e.other_cdcs_code,
    e.is_inferred,
    e.gender,
    {{ age_band('e.birth_date', 'e.period') }}        as age_band,
    s.top_unit_code,
    s.upper_unit_code,
    s.province_old_code,
    s.province_new_code,
    s.ownership_type,
    s.industry_code
from events as e
left join {{ ref('int_cdcs_scope_months') }} as s
  on s.cdcs_code = e.cdcs_code and s.period = e.period
