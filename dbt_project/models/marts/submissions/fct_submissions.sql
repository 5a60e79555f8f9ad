-- grain: one submission (submission_id): every received file version (file_id; a duplicate arrival has a
-- ledger row and file_id of its own, status 'duplicate', no rows) of a branch × period × kind, plus one row per expected-but-missing submission (status 'not_submitted': a roster and a dues
-- report from every branch valid in the month, the insurance extract from BHXH).
-- is_late: received after the 10th of the following month.
with files as (
    select * from {{ ref('int_file_versions_ranked') }}
),

branches as (
    select branch_code, province_new_code, valid_from, valid_to
    from {{ ref('stg_registry__branches') }}
),

branch_units as (
    select unit_code, max(top_unit_code) as top_unit_code
    from {{ ref('int_union_units_resolved') }}
    group by unit_code
),

expected as (
    select p.period, b.branch_code, k.kind
    from {{ ref('int_periods') }} as p
    join branches as b
      on b.valid_from <= {{ month_end('p.period') }}
     and (b.valid_to is null or b.valid_to >= p.period)
    join (
        select 'roster' as kind, false as is_bhxh union all
        select 'dues', false union all
        select 'insurance', true
    ) as k
      on k.is_bhxh = (b.branch_code = 'BHXH')
),

missing as (
    select e.*
    from expected as e
    left join files as f
      on f.branch_code = e.branch_code and f.period = e.period and f.kind = e.kind
     and f.status in ('accepted', 'duplicate')
    where f.file_id is null
),

received as (
    select
        file_id                                           as submission_id,
        file_id,
        branch_code,
        period,
        kind,
        detected_kind,
        original_name,
        received_at,
        status,
        case
            when status = 'accepted' and is_superseded then 'superseded'
            when status = 'accepted' then 'accepted'
            else status
        end                                               as submission_status,
        reason_code,
        message_vi,
        rows_read,
        rows_accepted,
        rows_refused,
        file_format,
        file_encoding,
        ingested_at,
        is_superseded,
        is_current_version,
        accepted_version_rank                             as version_rank
    from files
),

not_submitted as (
    select
        'missing:' || branch_code || ':' || cast(period as {{ dbt.type_string() }}) || ':' || kind as submission_id,
        cast(null as {{ dbt.type_string() }})             as file_id,
        branch_code,
        period,
        kind,
        cast(null as {{ dbt.type_string() }})             as detected_kind,
        cast(null as {{ dbt.type_string() }})             as original_name,
        cast(null as {{ dbt.type_timestamp() }})          as received_at,
        'not_submitted'                                   as status,
        'not_submitted'                                   as submission_status,
        cast(null as {{ dbt.type_string() }})             as reason_code,
        cast(null as {{ dbt.type_string() }})             as message_vi,
        cast(null as {{ dbt.type_bigint() }})             as rows_read,
        cast(null as {{ dbt.type_bigint() }})             as rows_accepted,
        cast(null as {{ dbt.type_bigint() }})             as rows_refused,
        cast(null as {{ dbt.type_string() }})             as file_format,
        cast(null as {{ dbt.type_string() }})             as file_encoding,
        cast(null as {{ dbt.type_timestamp() }})          as ingested_at,
        false                                             as is_superseded,
        false                                             as is_current_version,
        cast(null as {{ dbt.type_bigint() }})             as version_rank
    from missing
),

all_rows as (
    select * from received
    union all
    select * from not_submitted
)

select
    cast(a.submission_id as {{ dbt.type_string() }})      as submission_id,
    a.file_id,
    a.branch_code,
    cast(a.period as date)                                as period,
    a.kind,
    a.detected_kind,
    a.original_name,
    a.received_at,
    {{ submission_deadline('a.period') }}                 as deadline,
    coalesce(cast(a.received_at as date) > {{ submission_deadline('a.period') }}, false) as is_late,
    a.status,
    a.submission_status,
    a.reason_code,
    a.message_vi,
    a.rows_read,
    a.rows_accepted,
    a.rows_refused,
    a.file_format,
    a.file_encoding,
    a.ingested_at,
    a.is_superseded,
    a.is_current_version,
    cast(a.version_rank as bigint)                        as version_rank,
    b.province_new_code,
    bu.top_unit_code,
    case when a.branch_code = 'BHXH' then null else a.branch_code end as upper_unit_code
from all_rows as a
left join (select branch_code, max(province_new_code) as province_new_code from branches group by branch_code) as b
  on b.branch_code = a.branch_code
left join branch_units as bu on bu.unit_code = a.branch_code
