-- grain: one way a person was written on current-roster rows (not carried forward): cccd × cmnd × name_key ×
-- birth_date × birth_date_precision × gender × bhxh_code (nulls are values), with the first month it was written and the
-- smallest CĐCS code that wrote it that month. What identity resolution (int_member_identities), its conflicts
-- (dq_member_conflicts) and key changes read instead of every roster row of all history.
-- IDENTIFYING (CCCD, CMND, names, birth dates): intermediate schema, never in the analysts' file.
--
-- Kept up to date month by month, insert-only: a build given the months whose files changed (restate_from: W = the
-- earliest) deletes the stored variants first written from W on, keeps the others (current-roster rows of
-- earlier months did not change, so their first month and unit still hold) and inserts only the variants of the
-- rows from W on that the kept ones do not have (a variant also written before W keeps its stored first month,
-- which is earlier). A new month whose people are written as before inserts almost nothing, instead of rewriting
-- every variant. Key changes and carried-forward months do not change any current-roster row, so unlike the
-- month-restated models W is not moved back for them (and this model, which identity resolution reads, does not
-- depend on the keys). A build from nothing, or one that restates every month, reads all history.
{%- set window_start = restate_from() %}
{%- set combine = is_incremental() and window_start is not none %}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook=["{{ delete_variants_from_window() }}"]
) }}

with rows_ as (
    select
        cccd,
        cmnd,
        name_key,
        birth_date,
        coalesce(birth_date_precision, 'day')                       as birth_date_precision,
        gender,
        bhxh_code,
        period,
        cdcs_code
    from {{ ref('int_roster_rows_monthly') }}
    where not is_carried_forward
    {%- if combine %}
      and period >= cast('{{ window_start }}' as date)
      and {{ raw_file_month_floor('file_month', "'" ~ window_start ~ "'") }}
    {%- endif %}
){%- if combine %},

new_rows as (
    -- the rows written the way a kept variant (first written before W, after the pre-hook) has it keep that
    -- row: dropped before grouping, so only the few new variants are grouped (a variant's rows are all dropped
    -- or all kept, so each new variant's first month and unit come from all its rows)
    select r.*
    from rows_ as r
    where not exists (
        select 1 from {{ this }} as s
        where s.cccd is not distinct from r.cccd
          and s.cmnd is not distinct from r.cmnd
          and s.name_key is not distinct from r.name_key
          and s.birth_date is not distinct from r.birth_date
          and s.birth_date_precision = r.birth_date_precision
          and s.gender is not distinct from r.gender
          and s.bhxh_code is not distinct from r.bhxh_code
    )
)
{%- endif %}

select
    cccd,
    cmnd,
    name_key,
    birth_date,
    birth_date_precision,
    gender,
    bhxh_code,
    min(period)                                                 as first_period,
    arg_min(cdcs_code, struct_pack(p := period, c := cdcs_code)) as first_cdcs_code
from {{ 'new_rows' if combine else 'rows_' }}
group by cccd, cmnd, name_key, birth_date, birth_date_precision, gender, bhxh_code
