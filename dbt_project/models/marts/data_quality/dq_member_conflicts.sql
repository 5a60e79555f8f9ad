-- grain: one identity conflict (conflict_id), never merged silently:
-- - 'active_in_two_units': a person active at month end in two CĐCS in one month (member_key × period ×
--   cdcs_code of the unit where they are NOT counted; other_cdcs_code = where they are counted);
-- - 'cccd_two_people': one CCCD written with different people (name without accents, gender, or birth
--   date taking its precision into account differ) in the current rosters (one row per CCCD, at the first
--   month it is seen, with the number of variants);
-- - 'cmnd_ambiguous': a legacy CMND whose name + birth date + gender match several CCCD people (it keeps
--   a key of its own);
-- - 'cmnd_link_contested': a legacy CMND linked to a CCCD person when it was the only match, matched by
--   another CCCD person seen later (the link stands, keys stay stable: for a data steward to check;
--   variant_count = the CCCD people it matches);
-- - 'cmnd_match_later': a legacy CMND with a key of its own that matches a CCCD person only through details
--   written after they were first seen together (e.g. a birth date completed later): not merged
--   retroactively, for a data steward to check (variant_count = the CCCD people it matches).
with two_units as (
    select
        'active_in_two_units'            as conflict_type,
        u.member_key,
        u.period,
        u.cdcs_code,
        c.cdcs_code                      as other_cdcs_code,
        cast(u.n_units as bigint)        as variant_count
    from {{ ref('int_member_unit_months') }} as u
    join {{ ref('int_member_months') }} as c
      on c.member_key = u.member_key and c.period = u.period
    where u.unit_rank > 1
),

cccd_candidates as (
    -- CCCDs written with more than one raw variant (name, gender, birth year or exact birth date): the only
    -- ones that can differ below, so the accent-stripping name key is computed for those rows only
    select r.cccd
    from {{ ref('int_roster_rows_monthly') }} as r
    where r.cccd is not null and not r.is_carried_forward
    group by r.cccd
    -- "more than one distinct non-null value" as min <> max (the same test, no distinct sets per CCCD)
    having min(r.full_name) <> max(r.full_name)
        or min(r.gender) <> max(r.gender)
        or min(extract(year from r.birth_date)) <> max(extract(year from r.birth_date))
        or min(case when coalesce(r.birth_date_precision, 'day') = 'day' then r.birth_date end)
           <> max(case when coalesce(r.birth_date_precision, 'day') = 'day' then r.birth_date end)
),

cccd_rows as (
    select
        r.cccd,
        {{ name_search('r.full_name') }}         as name_search,
        r.birth_date,
        coalesce(r.birth_date_precision, 'day')  as birth_date_precision,
        r.gender,
        r.period,
        r.cdcs_code
    from {{ ref('int_roster_rows_monthly') }} as r
    semi join cccd_candidates as cc on cc.cccd = r.cccd
    where r.cccd is not null and not r.is_carried_forward
),

cccd_variants as (
    -- different people behind one CCCD: names that differ even without accents, different genders,
    -- or birth dates that cannot be the same (taking year-/month-only dates into account)
    select
        cccd,
        count(distinct name_search || '|' || coalesce(gender, '') || '|'
              || cast(extract(year from birth_date) as {{ dbt.type_string() }})) as n_variants,
        min(period)                   as first_period,
        min(cdcs_code)                as cdcs_code
    from cccd_rows
    group by cccd
    having count(distinct name_search) > 1
        or count(distinct gender) > 1
        or count(distinct extract(year from birth_date)) > 1
        or count(distinct case when birth_date_precision = 'day' then birth_date end) > 1
),

two_people as (
    select
        'cccd_two_people'                as conflict_type,
        k.member_key,
        v.first_period                   as period,
        v.cdcs_code,
        cast(null as {{ dbt.type_string() }}) as other_cdcs_code,
        cast(v.n_variants as bigint)     as variant_count
    from cccd_variants as v
    join {{ ref('int_member_keys') }} as k on k.identity_record = v.cccd
),

cmnd_records as (
    -- legacy CMND records a data steward should check, in one pass over the roster rows:
    -- ambiguous (own key), linked but matched later by another CCCD person, own key but matched later
    select
        case k.resolution
            when 'cmnd_ambiguous' then 'cmnd_ambiguous'
            when 'cmnd_linked' then 'cmnd_link_contested'
            else 'cmnd_match_later'
        end                              as conflict_type,
        k.member_key,
        min(r.period)                    as period,
        min(r.cdcs_code)                 as cdcs_code,
        cast(null as {{ dbt.type_string() }}) as other_cdcs_code,
        cast(case k.resolution
            when 'cmnd_ambiguous' then null
            when 'cmnd_linked' then max(k.n_later_matches) + 1
            else max(k.n_later_matches)
        end as bigint)                   as variant_count
    from {{ ref('int_member_keys') }} as k
    join {{ ref('int_roster_rows_monthly') }} as r on r.identity_record = k.identity_record
    where k.resolution = 'cmnd_ambiguous'
       or (k.resolution in ('cmnd_linked', 'cmnd_only') and k.n_later_matches > 0 and not r.is_carried_forward)
    group by k.resolution, k.member_key
),

conflicts as (
    select * from two_units
    union all select * from two_people
    union all select * from cmnd_records
)

select
    cast({{ dbt.hash(dbt.concat(["c.conflict_type", "'|'", "c.member_key", "'|'", "cast(c.period as " ~ dbt.type_string() ~ ")", "'|'", "coalesce(c.cdcs_code, '')"])) }} as {{ dbt.type_string() }}) as conflict_id,
    c.conflict_type,
    c.member_key,
    cast(c.period as date)     as period,
    c.cdcs_code,
    c.other_cdcs_code,
    c.variant_count,
    s.top_unit_code,
    s.upper_unit_code,
    s.province_new_code
from conflicts as c
left join {{ ref('int_cdcs_scope_months') }} as s
  on s.cdcs_code = c.cdcs_code and s.period = c.period
