{{ config(materialized='table') }}  -- one small Parquet file per file version: read once per build, not once per test and per use
-- grain: one row per received file version (file_id). The ledger is loose rows plus compacted segments
-- (pipelines.ingest.ledger): a row read twice while it was being compacted is kept once (the latest written).
with source as (
    select * from (
        select
            *,
            row_number() over (partition by file_id order by ingested_at desc) as ledger_copy
        from {{ raw_relation('raw', 'files') }}
    ) as ledger
    where ledger_copy = 1
)
select
    cast(file_id as {{ dbt.type_string() }})          as file_id,
    cast(sha256 as {{ dbt.type_string() }})           as content_sha256,
    cast(branch_code as {{ dbt.type_string() }})      as branch_code,
    cast(period as date)                              as period,
    cast(kind as {{ dbt.type_string() }})             as kind,
    cast(detected_kind as {{ dbt.type_string() }})    as detected_kind,
    cast(original_name as {{ dbt.type_string() }})    as original_name,
    cast(received_at as {{ dbt.type_timestamp() }})   as received_at,
    cast(status as {{ dbt.type_string() }})           as status,
    cast(reason_code as {{ dbt.type_string() }})      as reason_code,
    cast(message_vi as {{ dbt.type_string() }})       as message_vi,
    cast(rows_read as {{ dbt.type_bigint() }})        as rows_read,
    cast(rows_accepted as {{ dbt.type_bigint() }})    as rows_accepted,
    cast(rows_refused as {{ dbt.type_bigint() }})     as rows_refused,
    cast(format as {{ dbt.type_string() }})           as file_format,
    cast(encoding as {{ dbt.type_string() }})         as file_encoding,
    cast(ingested_at as {{ dbt.type_timestamp() }})   as ingested_at
from source
