-- grain: one accepted social-insurance extract row (employer × month within one file)
with source as (
    select * from {{ raw_relation('raw', 'insurance') }}
)
select
    file_id,
    branch_code,
    cast(period as date)                              as period,
    file_month                                        as file_month,
    source_sheet,
    cast(source_row as {{ dbt.type_bigint() }})       as source_row,
    flags,
    employer_code,
    employer_name,
    province_new_code,
    industry_code,
    ownership_type,
    cast(insured_workers as {{ dbt.type_bigint() }})  as insured_workers,
    cast(insured_women as {{ dbt.type_bigint() }})    as insured_women
from source
