-- grain: one province of either map (province_key): the 63 provinces before 1 July 2025 ('old') and the
-- 34 after ('new'). Every old province points to the new one it merged into (new_code), so any series can
-- be shown on today's 34 provinces, months before the merger included.
with mapping as (
    select * from {{ ref('provinces_2025') }}
),

old_provinces as (
    select
        'old_' || old_code               as province_key,
        'old'                            as province_set,
        old_code                         as province_code,
        old_name                         as province_name,
        new_code                         as new_code,
        new_name                         as new_name,
        cast(null as date)               as valid_from,
        cast('2025-06-30' as date)       as valid_to
    from mapping
),

new_provinces as (
    select distinct
        'new_' || new_code               as province_key,
        'new'                            as province_set,
        new_code                         as province_code,
        new_name                         as province_name,
        new_code                         as new_code,
        new_name                         as new_name,
        cast('2025-07-01' as date)       as valid_from,
        cast(null as date)               as valid_to
    from mapping
),

merged_counts as (
    select new_code, count(*) as old_province_count from mapping group by new_code
)

select p.*, m.old_province_count
from (select * from old_provinces union all select * from new_provinces) as p
join merged_counts as m on m.new_code = p.new_code
