{{ config(materialized='table') }}
-- grain: one person (member_key) with a current-roster row. Their latest current-roster row (not carried forward)
-- by (month, CCCD rows before CMND rows, file, row), with its details and the accent-free name the member search
-- uses. restricted.member_pii and dim_member project it. IDENTIFYING (names, birth dates, salaries, CCCD as
-- identity_id): intermediate schema, never in the analysts' file.
--
-- Kept up to date month by month instead of sorting every roster row of all history: a build given the months
-- whose files changed (restate_from: W = the earliest; carry-forward and key changes change no current-roster row)
-- takes, per person, the latest row from W on when there is one, else the stored row. That is exact because rows
-- before W did not change. People for whom that cannot be told (a stored row from W on that the new rows no
-- longer have, keys that merged or split) are re-read from all history; that part is left out when the stored
-- table shows it cannot be needed (the usual new month), so a new month reads that month's rows only. Pure re-keys
-- rename the stored row; the stored accent-free name is reused when the name did not change. A build from
-- nothing, or one that restates every month, reads all history. The people re-read from all history are listed
-- first and their roster rows found by their identity records before any join (member_states_records_rows): joined
-- to the keys first, every roster row of history was hashed, and a national month with one merged person ran out of
-- the 6 GB memory limit.
{%- set w = restate_from() %}
{%- set key_changes = ref('int_member_key_changes') %}
{%- set previous = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier)
      if this is not none else none %}
{%- set combine = previous is not none and w is not none and not flags.FULL_REFRESH %}
{%- set recompute = true %}
{%- if combine and execute %}
  {%- set f = run_query("select exists (select 1 from " ~ key_changes ~ " where not is_pure_rename) "
        ~ "or exists (select 1 from " ~ previous ~ " where r_last_period >= cast('" ~ w ~ "' as date))").rows[0] %}
  {%- set recompute = f[0] %}
{%- endif %}
{#- the people re-read from all history: keys merged or split, and (when the stored table shows it can happen) a
    stored row from W on that the new rows no longer have -#}
{%- set recompute_keys = none %}
{%- if combine %}
{%- set recompute_keys %}
    {{ member_states_merged_keys(key_changes) }}
    {%- if recompute %}
    union
    -- a stored row from W on that the new rows no longer have
    select member_key from stored
    where r_last_period >= cast('{{ w }}' as date)
      and member_key not in (
          select k.member_key
          from {{ ref('int_roster_rows_monthly') }} as r
          join {{ ref('int_member_keys') }} as k on k.identity_record = r.identity_record
          where not r.is_carried_forward and r.period >= cast('{{ w }}' as date)
            and {{ raw_file_month_floor('r.file_month', "'" ~ w ~ "'") }})
    {%- endif %}
{%- endset %}
{%- endif %}
{#- ... listed once in a temporary table of this connection (the query below reads them three times), and their roster
    rows of all history read by their identity records (member_states_records_rows) -#}
{%- set recompute_table, recompute_rows = none, none %}
{%- if combine and recompute and execute %}
  {%- set recompute_table = 'doanvien_roster_states_recompute' %}
  {%- do run_query('create or replace temporary table ' ~ recompute_table ~ ' as with stored as ('
                   ~ member_states_stored(previous, key_changes) ~ ') ' ~ recompute_keys) %}
  {%- set recompute_rows = member_states_records_rows(
        'select identity_record from ' ~ ref('int_member_keys') ~ ' where member_key in (select member_key from '
        ~ recompute_table ~ ')', 'doanvien_roster_states_records') %}
{%- endif %}
{%- set columns = ['identity_id', 'full_name', 'birth_date', 'birth_date_precision', 'gender', 'ethnicity_code',
                   'bhxh_code', 'member_code', 'cdcs_code', 'insurance_salary', 'join_date', 'last_period'] %}

{%- if not combine %}

select
    member_key,
    {%- for c in columns %}
    r_{{ c }},
    {%- endfor %}
    {{ name_search('r_full_name') }} as r_name_search
from ({{ member_states_roster_summary('1 = 1') }}) as r

{%- else %}

with stored as (
    {{ member_states_stored(previous, key_changes) }}
),

recompute as (
    {%- if recompute_table %}
    select member_key from {{ recompute_table }}
    {%- else %}
    {{ recompute_keys }}
    {%- endif %}
),

latest as (
    select
        coalesce(b.member_key, wr.member_key) as member_key,
        {%- for c in columns %}
        case when wr.member_key is not null then wr.r_{{ c }} else b.r_{{ c }} end as r_{{ c }},
        {%- endfor %}
        case when wr.member_key is null or wr.r_full_name = b.r_full_name then b.r_name_search end as stored_name_search
    from (select * from stored where member_key not in (select member_key from recompute)) as b
    full outer join (
        select * from ({{ member_states_roster_summary("r.period >= cast('" ~ w ~ "' as date) and "
                                                     ~ raw_file_month_floor('r.file_month', "'" ~ w ~ "'")) }}) as w
        where member_key not in (select member_key from recompute)
    ) as wr
      on wr.member_key = b.member_key
    union all
    select *, cast(null as {{ dbt.type_string() }}) as stored_name_search
    from ({{ member_states_roster_summary('k.member_key in (select member_key from recompute)' if recompute else 'false',
                                          rows=recompute_rows) }}) as r
)

select
    member_key,
    {%- for c in columns %}
    r_{{ c }},
    {%- endfor %}
    coalesce(stored_name_search, {{ name_search('r_full_name') }}) as r_name_search
from latest

{%- endif %}
