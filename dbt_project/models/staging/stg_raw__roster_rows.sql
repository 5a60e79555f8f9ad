-- grain: one accepted roster row (file_id × source_sheet × source_row)
with source as (
    select * from {{ raw_relation('raw', 'roster') }}
)
select
    file_id,
    branch_code,
    cast(period as date)                               as period,
    file_month                                         as file_month,
    source_sheet,
    cast(source_row as {{ dbt.type_bigint() }})        as source_row,
    flags,
    cdcs_code,
    full_name,
    cast(birth_date as date)                           as birth_date,
    birth_date_precision,
    gender,
    ethnicity_code,
    nullif(trim(cccd), '')                             as cccd,
    nullif(trim(cmnd), '')                             as cmnd,
    nullif(trim(bhxh_code), '')                        as bhxh_code,
    nullif(trim(member_code), '')                      as member_code,
    cast(join_date as date)                            as join_date,
    join_date_precision,
    cast(insurance_salary as {{ dbt.type_bigint() }})  as insurance_salary,
    cast(leave_date as date)                           as leave_date,
    nullif(trim(leave_reason_code), '')                as leave_reason_code
from source
