-- grain: one accepted service delivery row (one delivery to one member)
with source as (
    select * from {{ raw_relation('raw', 'services') }}
)
select
    file_id,
    branch_code,
    cast(period as date)                          as period,
    file_month                                    as file_month,
    source_sheet,
    cast(source_row as {{ dbt.type_bigint() }})   as source_row,
    flags,
    cdcs_code,
    full_name,
    nullif(trim(cccd), '')                        as cccd,
    nullif(trim(cmnd), '')                        as cmnd,
    program                                       as program_code,
    cast(service_date as date)                    as service_date,
    cast(amount as {{ dbt.type_bigint() }})       as amount
from source
