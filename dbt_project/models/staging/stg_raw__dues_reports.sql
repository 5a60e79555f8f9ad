-- grain: one accepted dues report row (CĐCS × month within one file)
with source as (
    select * from {{ raw_relation('raw', 'dues') }}
)
select
    file_id,
    branch_code,
    cast(period as date)                             as period,
    file_month                                       as file_month,
    source_sheet,
    cast(source_row as {{ dbt.type_bigint() }})      as source_row,
    flags,
    cdcs_code,
    cdcs_name,
    cast(members_count as {{ dbt.type_bigint() }})   as reported_members,
    cast(salary_fund as {{ dbt.type_bigint() }})     as reported_salary_fund,
    cast(dues_expected as {{ dbt.type_bigint() }})   as reported_dues_expected,
    cast(dues_collected as {{ dbt.type_bigint() }})  as dues_collected
from source
