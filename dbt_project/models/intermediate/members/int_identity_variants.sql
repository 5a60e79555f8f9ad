{{ config(materialized='table') }}
-- grain: one way a person was written on current-roster rows (not carried forward): cccd × cmnd × name_key ×
-- birth_date × birth_date_precision × gender (nulls are values), with the first month it was written and the
-- smallest CĐCS code that wrote it that month. What identity resolution (int_member_identities), its conflicts
-- (dq_member_conflicts) and key changes read instead of every roster row of all history.
-- IDENTIFYING (CCCD, CMND, names, birth dates): intermediate schema, never in the analysts' file.
--
-- Kept up to date month by month: a build given the months whose files changed (restate_from: W = the
-- earliest) keeps the stored variants first written before W (current-roster rows of earlier months did not
-- change, so their first month and unit still hold) and adds the variants of the rows from W on (a variant also
-- seen before W keeps its stored first month). Key changes and carried-forward months do not change any
-- current-roster row, so unlike the month-restated models W is not moved back for them (and this model, which
-- identity resolution reads, does not depend on the keys). A build from nothing, or one that restates every
-- month, reads all history.
{%- set window_start = restate_from() %}
{%- set previous = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) if this is not none else none %}
{%- set combine = previous is not none and window_start is not none and not flags.FULL_REFRESH %}

with written as (
    select
        cccd,
        cmnd,
        name_key,
        birth_date,
        coalesce(birth_date_precision, 'day')                       as birth_date_precision,
        gender,
        min(period)                                                 as first_period,
        arg_min(cdcs_code, struct_pack(p := period, c := cdcs_code)) as first_cdcs_code
    from {{ ref('int_roster_rows_monthly') }}
    where not is_carried_forward
    {%- if combine %}
      and period >= cast('{{ window_start }}' as date)
      and {{ raw_file_month_floor('file_month', "'" ~ window_start ~ "'") }}
    {%- endif %}
    group by all
)

{%- if not combine %}

select * from written

{%- else %}

, variants as (
    select cccd, cmnd, name_key, birth_date, birth_date_precision, gender, first_period, first_cdcs_code
    from {{ previous }}
    where first_period < cast('{{ window_start }}' as date)
    union all
    select cccd, cmnd, name_key, birth_date, birth_date_precision, gender, first_period, first_cdcs_code
    from written
)

select
    cccd,
    cmnd,
    name_key,
    birth_date,
    birth_date_precision,
    gender,
    min(first_period)                                                          as first_period,
    arg_min(first_cdcs_code, struct_pack(p := first_period, c := first_cdcs_code)) as first_cdcs_code
from variants
group by all

{%- endif %}
