-- grain: one union unit version (unit_code × valid_from)
with source as (
    select * from {{ raw_relation('registry', 'units') }}
)
select
    unit_code,
    unit_name,
    level                          as unit_level,
    upper_level_type,
    parent_code,
    province_old_code,
    province_new_code,
    sector_code,
    ownership_type,
    industry_code,
    employer_code,
    cast(valid_from as date)       as valid_from,
    cast(valid_to as date)         as valid_to
from source
