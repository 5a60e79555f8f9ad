{{ config(**monthly_restatement()) }}
-- grain: one member_key × cdcs_code × period where the member is active at month end in that CĐCS.
-- Materialised incrementally (keys and a few attributes only, no identifying column): every monthly mart
-- reads its months from here, so a refresh recomputes the roster pipeline for the restated months only (the
-- month before them, which decides who counts where, is read from the stored rows).
-- Duplicate rows of one person in one CĐCS collapse to the latest roster row. unit_rank orders the CĐCS
-- of a person active in two units in one month: 1 = where they were active the previous month, failing
-- that the earliest join date, then the lowest CĐCS code (rank 1 counts; others are conflicts).
with rows_ as (
    select r.*, k.member_key
    from {{ ref('int_roster_rows_monthly') }} as r
    join {{ ref('int_member_keys') }} as k
      on k.identity_record = r.identity_record
    where r.is_active_at_month_end
      and {{ period_window('r.period') }}
      and {{ raw_file_month_floor('r.file_month', carried_forward=true) }}
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
    {%- if is_incremental() %}
    union all
    select member_key, cdcs_code, next_period from {{ this }}
    where {{ period_window('period', 1) }} and not ({{ period_window('period') }})
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
where {{ period_window('period') }}
