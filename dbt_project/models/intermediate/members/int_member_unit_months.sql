{{ config(**monthly_restatement(people='merged', dated=false)) }}
-- grain: one member_key × cdcs_code × period where the member is active at month end in that CĐCS.
-- Materialised incrementally (keys and a few attributes only, no identifying column): every monthly mart
-- reads its months from here, so a refresh recomputes the roster pipeline for the restated months only (the
-- month before them, which decides who counts where, is read from the stored rows).
-- Duplicate rows of one person in one CĐCS collapse to the latest roster row. unit_rank orders the CĐCS
-- of a person active in two units in one month: 1 = where they were active the previous month, failing
-- that the earliest join date, then the lowest CĐCS code (rank 1 counts; others are conflicts).
-- Merged or split people whose records reach back before the window (restate_bounds.k) have their rows of those
-- earlier months recomputed too, from their own roster rows (read by identity record): a person's rows depend on
-- their own roster rows only. The window is not moved back over months a branch did not submit (restate_bounds,
-- dated=false): a month's rows stand on the roster carried into it, which a later roster does not change.
{#- the tables restate_bounds reads, ref()'d whatever the run (dbt records dependencies at parse time) #}
{%- set _dependencies = [ref('int_roster_branch_months'), ref('int_member_key_changes')] %}
{%- set b = restate_bounds(dated=false) %}
{%- set targeted = b is not none and b.k is not none %}
{%- if b is not none %}
{%- set w = "cast('" ~ b.w ~ "' as date)" %}
{%- endif %}
{%- if targeted %}
{%- set merged = restated_people_sql('merged') %}
{%- set k = "cast('" ~ b.k ~ "' as date)" %}
{%- endif %}
with rows_ as (
    select r.*, k.member_key
    from {{ ref('int_roster_rows_monthly') }} as r
    join {{ ref('int_member_keys') }} as k
      on k.identity_record = r.identity_record
    where r.is_active_at_month_end
      {%- if b is not none %}
      and r.period >= {{ w }}
      and {{ raw_file_month_floor('r.file_month', w, carried_forward=true) }}
      {%- endif %}
    {%- if targeted %}
    union all
    -- the merged or split people's rows of the months k .. w - 1
    select r.*, k.member_key
    from {{ member_states_records_rows('select identity_record from ' ~ ref('int_member_keys')
                                       ~ ' where member_key in (' ~ merged ~ ')', 'doanvien_unit_months_records') }} as r
    join {{ ref('int_member_keys') }} as k
      on k.identity_record = r.identity_record
    where r.is_active_at_month_end
      and r.period >= {{ k }} and r.period < {{ w }}
    {%- endif %}
),

ranked as (
    select
        *,
        row_number() over (
            partition by member_key, cdcs_code, period
            order by report_period desc, file_id desc, source_row desc
        ) as rn
    from rows_
),

deduped as (
    select
        period,
        member_key,
        cdcs_code,
        branch_code,
        report_period,
        is_carried_forward,
        file_id,
        source_row,
        gender,
        birth_date,
        ethnicity_code,
        join_date,
        insurance_salary,
        cast({{ dbt.dateadd('month', 1, 'period') }} as date) as next_period
    from ranked
    where rn = 1
),

previous_months as (
    -- where people were the month before: the restated months, and the month before the window as stored
    -- (its roster rows did not change, and re-keyed people's stored rows are renamed before this runs).
    -- A row of the latest month is no one's month before (its next_period is past every period of the data):
    -- left out, so a one-month refresh joins its 12 M people with last month's stored rows only, not with its own
    select member_key, cdcs_code, next_period from deduped
    where next_period <= (select max(period) from {{ ref('int_roster_branch_months') }})
    {%- if b is not none %}
    union all
    select member_key, cdcs_code, next_period from {{ this }}
    where period = cast({{ dbt.dateadd('month', -1, w) }} as date)
    {%- endif %}
    {%- if targeted %}
    union all
    -- (the merged people's stored rows from k on were deleted by the pre-hook; their month before k is stored)
    select member_key, cdcs_code, next_period from {{ this }}
    where period = cast({{ dbt.dateadd('month', -1, k) }} as date)
      and member_key in ({{ merged }})
    {%- endif %}
),

with_previous as (
    select
        cur.*,
        prev.member_key is not null as was_here_last_month
    from deduped as cur
    left join previous_months as prev
      on prev.member_key = cur.member_key
     and prev.cdcs_code = cur.cdcs_code
     and prev.next_period = cur.period
)

select
    *,
    row_number() over (
        partition by member_key, period
        order by was_here_last_month desc, join_date asc nulls last, cdcs_code asc
    ) as unit_rank,
    count(*) over (partition by member_key, period) as n_units
from with_previous
