-- grain: one union unit version (unit_code × valid_from), with its ancestors as of the version's start:
-- top_unit_code (level 2: provincial federation or central sector union), upper_unit_code (level 3:
-- district / industrial-zone union until 30/06/2025, commune/ward union after, or corporation union),
-- and both province codes (63 old, 34 new; the new code is derived from the old one through
-- provinces_2025 when the registry leaves it empty, the old one carried from the unit's previous version).
with units as (
    select * from {{ ref('stg_registry__units') }}
),

levels as (
    select
        units.*,
        case unit_level
            when 'confederation' then 1
            when 'province_federation' then 2
            when 'sector_union' then 2
            when 'upper_level' then 3
            when 'cdcs' then 4
        end as level_no
    from units
),

-- the parent's version for a child version: the one valid at the child's start, else the nearest
parent_1b as (
    select
        c.unit_code, c.valid_from,
        p.unit_code as p1_code, p.level_no as p1_level, p.parent_code as p1_parent,
        row_number() over (
            partition by c.unit_code, c.valid_from
            order by case when p.valid_from <= c.valid_from and (p.valid_to is null or p.valid_to >= c.valid_from)
                          then 0 else 1 end,
                     abs({{ dbt.datediff('c.valid_from', 'p.valid_from', 'day') }})
        ) as rn
    from levels as c
    left join levels as p on p.unit_code = c.parent_code
),

parent_2 as (
    select
        p1.unit_code, p1.valid_from, p1.p1_code, p1.p1_level,
        g.unit_code as p2_code, g.level_no as p2_level,
        row_number() over (
            partition by p1.unit_code, p1.valid_from
            order by case when g.valid_from <= p1.valid_from and (g.valid_to is null or g.valid_to >= p1.valid_from)
                          then 0 else 1 end,
                     abs({{ dbt.datediff('p1.valid_from', 'g.valid_from', 'day') }})
        ) as rn
    from parent_1b as p1
    left join levels as g on g.unit_code = p1.p1_parent
    where p1.rn = 1
),

provinces as (
    select distinct old_code, new_code from {{ ref('provinces_2025') }}
),

resolved as (
    select
        l.*,
        case
            when l.level_no = 2 then l.unit_code
            when p.p1_level = 2 then p.p1_code
            when p.p2_level = 2 then p.p2_code
        end as top_unit_code,
        case
            when l.level_no = 3 then l.unit_code
            when p.p1_level = 3 then p.p1_code
            when p.p2_level = 3 then p.p2_code
        end as upper_unit_code,
        {{ last_non_null('l.province_old_code', 'l.unit_code', 'l.valid_from') }} as province_old_code_filled
    from levels as l
    left join parent_2 as p
      on p.unit_code = l.unit_code and p.valid_from = l.valid_from and p.rn = 1
)

select
    r.unit_code || '@' || cast(r.valid_from as {{ dbt.type_string() }}) as unit_version_key,
    r.unit_code,
    r.unit_name,
    r.unit_level,
    r.level_no,
    r.upper_level_type,
    r.parent_code,
    r.top_unit_code,
    r.upper_unit_code,
    r.province_old_code_filled                           as province_old_code,
    coalesce(r.province_new_code, pv.new_code)           as province_new_code,
    r.sector_code,
    r.ownership_type,
    r.industry_code,
    r.employer_code,
    r.valid_from,
    r.valid_to
from resolved as r
left join provinces as pv on pv.old_code = r.province_old_code_filled
