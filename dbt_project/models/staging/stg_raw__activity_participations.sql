-- grain: one accepted activity participation row (one member in one activity)
with source as (
    select * from {{ raw_relation('raw', 'activities') }}
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
    activity_type                                 as activity_type_code,
    activity_name,
    cast(activity_date as date)                   as activity_date,
    full_name,
    nullif(trim(cccd), '')                        as cccd,
    nullif(trim(cmnd), '')                        as cmnd
from source
