-- grain: one branch version (branch_code × valid_from)
with source as (
    select * from {{ raw_relation('registry', 'branches') }}
)
select
    branch_code,
    branch_name,
    province_new_code,
    email,
    cast(valid_from as date)       as valid_from,
    cast(valid_to as date)         as valid_to
from source
