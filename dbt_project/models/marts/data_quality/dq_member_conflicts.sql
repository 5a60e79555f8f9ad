-- grain: one identity conflict (conflict_id), never merged silently:
-- - 'active_in_two_units': a person active at month end in two CĐCS in one month (member_key × period ×
--   cdcs_code of the unit where they are NOT counted; other_cdcs_code = where they are counted);
-- - 'cccd_two_people': one CCCD written with different people (name without accents, gender, or birth
--   date taking its precision into account differ) in the current rosters (one row per CCCD, at the first
--   month it is seen and the CĐCS that wrote it then, with the number of variants);
-- - 'cmnd_ambiguous': a legacy CMND whose name + birth date + gender match several CCCD people (it keeps
--   a key of its own);
-- - 'cmnd_link_contested': a legacy CMND linked to a CCCD person when it was the only match, matched by
--   another CCCD person seen later (the link stands, keys stay stable: for a data steward to check;
--   variant_count = the CCCD people it matches);
-- - 'cmnd_match_later': a legacy CMND with a key of its own that matches a CCCD person only through details
--   written after they were first seen together (e.g. a birth date completed later): not merged
--   retroactively, for a data steward to check (variant_count = the CCCD people it matches);
-- - 'cmnd_bhxh_differs': a legacy CMND with a key of its own because the BHXH codes of every CCCD person it
--   matches (name, gender, exact birth date) differ from its own: two strangers, or one person with a mistyped
--   BHXH code, for a data steward to check (variant_count = those CCCD people);
-- - 'cmnd_several_cccd': a legacy CMND written beside different CCCDs on roster rows (a file's CMND column): a
--   typo on one roster, or one number given to two people. Each CCCD stays its own person and the CMND's own
--   rows are linked by name as any CMND's (int_member_identities); one row per CCCD person, at the first month
--   and CĐCS that wrote the pair (variant_count = the CCCDs written beside that CMND);
-- - 'cmnd_beside_other_name': a legacy CMND written beside one CCCD only, on rows whose name and gender are not
--   those of any row where the CMND stands alone (the CMND of the row above dragged down by Excel's fill handle,
--   say): the CMND is not linked to that CCCD by the row (int_member_identities); one row per CCCD person, at the
--   first month and CĐCS that wrote the pair (variant_count = 1).
with two_units as (
    select
        'active_in_two_units'            as conflict_type,
        u.member_key,
        u.period,
        u.cdcs_code,
        c.cdcs_code                      as other_cdcs_code,
        cast(u.n_units as bigint)        as variant_count
    from {{ ref('int_member_unit_months') }} as u
    join {{ ref('int_member_unit_months') }} as c
      on c.member_key = u.member_key and c.period = u.period
    -- both sides filtered on n_units (the person's units that month, on every one of their rows): a scan of one
    -- integer column keeps the few conflicted rows, where joining the counted side (int_member_months) read the
    -- keys of every person × month of history
    where u.n_units > 1 and u.unit_rank > 1
      and c.n_units > 1 and c.unit_rank = 1
),

cccd_candidates as (
    -- CCCDs written in more than one way (int_identity_variants: one row per way a person was written, kept
    -- month by month): the only ones that can differ below, so the accent-stripping name key is computed for
    -- those variants only
    select cccd
    from {{ ref('int_identity_variants') }}
    where cccd is not null
    group by cccd
    having count(*) > 1
),

cccd_rows as (
    select
        v.cccd,
        {{ name_search('v.name_key') }}          as name_search,
        v.birth_date,
        v.birth_date_precision,
        v.gender,
        v.first_period,
        v.first_cdcs_code
    from {{ ref('int_identity_variants') }} as v
    semi join cccd_candidates as cc on cc.cccd = v.cccd
),

cccd_variants as (
    -- different people behind one CCCD: names that differ even without accents, different genders,
    -- or birth dates that cannot be the same (taking year-/month-only dates into account); listed at the first
    -- month the CCCD was written, with the (smallest) CĐCS that wrote it then
    select
        cccd,
        count(distinct name_search || '|' || coalesce(gender, '') || '|'
              || cast(extract(year from birth_date) as {{ dbt.type_string() }})) as n_variants,
        min(first_period)             as first_period,
        arg_min(first_cdcs_code, struct_pack(p := first_period, c := first_cdcs_code)) as cdcs_code
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

cmnd_flagged as (
    -- legacy CMND records a data steward should check: ambiguous (own key), linked but matched later by another
    -- CCCD person, own key but matched later, own key because their BHXH codes differ from those of the CCCD people
    -- they match; at the first month the CMND was written, with the (smallest) CĐCS that wrote it then
    select
        k.resolution,
        k.member_key,
        max(k.n_later_matches)           as n_later_matches,
        max(k.n_bhxh_differs)            as n_bhxh_differs,
        min(v.first_period)              as period,
        arg_min(v.first_cdcs_code, struct_pack(p := v.first_period, c := v.first_cdcs_code)) as cdcs_code
    from {{ ref('int_member_keys') }} as k
    join {{ ref('int_identity_variants') }} as v
      on v.cccd is null and 'cmnd:' || v.cmnd = k.identity_record
    where k.resolution = 'cmnd_ambiguous'
       or (k.resolution in ('cmnd_linked', 'cmnd_only') and k.n_later_matches > 0)
       or (k.resolution = 'cmnd_only' and k.n_bhxh_differs > 0)
    group by k.resolution, k.member_key
),

cmnd_records as (
    select
        case resolution
            when 'cmnd_ambiguous' then 'cmnd_ambiguous'
            when 'cmnd_linked' then 'cmnd_link_contested'
            else 'cmnd_match_later'
        end                              as conflict_type,
        member_key,
        period,
        cdcs_code,
        cast(null as {{ dbt.type_string() }}) as other_cdcs_code,
        cast(case resolution
            when 'cmnd_ambiguous' then null
            when 'cmnd_linked' then n_later_matches + 1
            else n_later_matches
        end as bigint)                   as variant_count
    from cmnd_flagged
    where resolution = 'cmnd_ambiguous' or n_later_matches > 0
    union all
    -- kept apart from every CCCD person it matches by BHXH codes alone: strangers, or one person whose code was
    -- mistyped on one side (variant_count = those CCCD people)
    select
        'cmnd_bhxh_differs',
        member_key,
        period,
        cdcs_code,
        cast(null as {{ dbt.type_string() }}),
        cast(n_bhxh_differs as bigint)
    from cmnd_flagged
    where resolution = 'cmnd_only' and n_bhxh_differs > 0
),

cmnd_cccd_pairs as (
    -- a CMND and a CCCD written on one roster row, with the first month and CĐCS that wrote them together
    {{ cmnd_row_pairs(ref('int_identity_variants')) }}
),

cmnd_pair_conflicts as (
    -- the CCCD people a CMND was written beside on rows that do not link them (macro cmnd_row_pairs): it was
    -- written beside several CCCDs, or beside one only on rows naming someone else than the CMND's own rows
    select
        p.conflict_type,
        k.member_key,
        min(p.first_period)              as period,
        arg_min(p.cdcs_code, struct_pack(p := p.first_period, c := p.cdcs_code)) as cdcs_code,
        cast(null as {{ dbt.type_string() }}) as other_cdcs_code,
        cast(max(p.n_cccd) as bigint)    as variant_count
    from (
        select *, case when n_cccd > 1 then 'cmnd_several_cccd' else 'cmnd_beside_other_name' end as conflict_type
        from cmnd_cccd_pairs
        where not links_by_row
    ) as p
    join {{ ref('int_member_keys') }} as k on k.identity_record = p.cccd
    group by p.conflict_type, k.member_key
),

conflicts as (
    select * replace ({{ member_key_text('member_key') }} as member_key) from (
        select * from two_units
        union all select * from two_people
        union all select * from cmnd_records
        union all select * from cmnd_pair_conflicts
    ) as u
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
