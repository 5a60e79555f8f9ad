{{ config(**monthly_restatement(people='restated')) }}
{#- int_restated_people, ref()'d whatever the run (dbt records dependencies at parse time) #}
{%- set _dependencies = [ref('int_restated_people')] %}
-- grain: one membership event (event_id = hash of member_key, period, event_type, cdcs_code):
-- join, leave (with reason), transfer_in, transfer_out, as seen in the month's rosters.
with events as (
    select * replace ({{ member_key_text('member_key') }} as member_key)
    from ({{ restated_rows_of(ref('int_member_events'), 'restated') }}) as e
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
