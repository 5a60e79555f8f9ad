{{ config(materialized='table') }}
-- grain: one person (member_key) whose rows an incremental build restates in months before its window
-- (restate_bounds: from k, the first month of a merged or split person's records, to w - 1). Empty unless this
-- build merged or split people whose records reach back before the months it restates for everyone.
-- - reason 'merged': both keys of every key change that is not a pure rename (int_member_key_changes): their
--   month rows are made of other records now;
-- - reason 'co_member': anyone else at month end in those months in a CĐCS where those people's records have a
--   roster row (a person counted in a CĐCS decides whether another's entry there is a join: int_member_events).
-- Everyone else's rows before w are unchanged. The models restated person by person read it
-- (monthly_restatement(people='restated')).
{#- the tables restate_bounds reads, ref()'d whatever the run (dbt records dependencies at parse time) #}
{%- set _dependencies = [ref('int_roster_branch_months'), ref('int_member_key_changes'), ref('int_member_keys'),
                          ref('int_roster_rows_monthly'), ref('int_member_unit_months')] %}
{%- set b = restate_bounds() %}
{%- set merged = member_states_merged_keys(ref('int_member_key_changes')) %}

{%- if b is none or b.k is none %}

select member_key, cast('merged' as {{ dbt.type_string() }}) as reason
from ({{ merged }}) as m
where 1 = 0

{%- else %}
{%- set records_sql = 'select identity_record from ' ~ ref('int_member_keys') ~ ' where member_key in (' ~ merged ~ ')' %}

with merged as (
    {{ merged }}
),

merged_units as (
    -- the CĐCS of every roster row of their records in those months (leaver rows too)
    select distinct r.cdcs_code
    from {{ member_states_records_rows(records_sql, 'doanvien_restated_people_records') }} as r
    where r.period >= cast('{{ b.k }}' as date) and r.period < cast('{{ b.w }}' as date)
),

co_members as (
    select distinct member_key
    from {{ ref('int_member_unit_months') }}
    where period >= cast('{{ b.k }}' as date) and period < cast('{{ b.w }}' as date)
      and cdcs_code in (select cdcs_code from merged_units)
)

select member_key, cast('merged' as {{ dbt.type_string() }}) as reason from merged
union all
select member_key, cast('co_member' as {{ dbt.type_string() }}) as reason from co_members
where member_key not in (select member_key from merged)

{%- endif %}
