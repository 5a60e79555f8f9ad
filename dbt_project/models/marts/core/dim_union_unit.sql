-- grain: one union unit version (unit_version_key = unit_code @ valid_from): the organisation tree
-- through time (SCD2), Confederation → provincial federation / central sector union → upper-level
-- union → CĐCS, with drill-down and scope columns on every version.
select
    unit_version_key,
    unit_code,
    unit_name,
    unit_level,
    upper_level_type,
    parent_code,
    top_unit_code,
    upper_unit_code,
    province_old_code,
    province_new_code,
    sector_code,
    ownership_type,
    industry_code,
    employer_code,
    valid_from,
    valid_to,
    valid_to is null as is_current
from {{ ref('int_union_units_resolved') }}
