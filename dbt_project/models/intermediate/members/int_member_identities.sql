{{ config(materialized='view') }}  -- read once, by int_member_keys (a table, where its columns are tested): a
-- table here wrote the 12 M records a second time every build (~5 s at national)
-- grain: one identity record (identity_record: a normalised CCCD, or 'cmnd:' || a legacy 9-digit CMND).
-- Resolves every record to one person (identity_id = the CCCD of the person, or the CMND record itself):
-- - a CCCD is its own person;
-- - a CMND seen in the same roster row as a CCCD belongs to that CCCD ('cmnd_same_row'; a file's column of old
--   CMNDs, read by ingestion) when that row names the CMND's own member (the name and gender of a row where the
--   CMND stands alone, and no other BHXH code: macro cmnd_row_pairs); seen beside several different CCCDs, or on a
--   row naming someone else (the CMND of the row above dragged down by Excel's fill handle, say, onto a namesake:
--   the BHXH codes tell them apart), it belongs to none of them by that row
--   and is matched as below (dq_member_conflicts lists those CCCD people: 'cmnd_several_cccd',
--   'cmnd_beside_other_name');
-- - otherwise a CMND is linked to a CCCD person when full name (normalised), birth date and gender match,
--   judged once, at the first month both had been seen (with the details each had been written with by then):
--   one match then: 'cmnd_linked'; several: 'cmnd_ambiguous'; none: 'cmnd_only' (until a CCCD person who
--   matches first appears). Details written later, and CCCD people who appear later, do not undo or make a
--   link: they are counted in n_later_matches and listed in dq_member_conflicts for a data steward. So a new
--   month never merges or splits people already built (keys stay stable; the months built keep theirs), except
--   a CMND-only member whose matching CCCD person appears for the first time: a pure re-key
--   (int_member_key_changes). The match is exact: a birth date known only to the year or month does not link on
--   the name alone (common names share a birth year; a wrong link would merge two people), only with a shared
--   BHXH code (below). Nor does a CCCD person whose social
--   insurance codes (BHXH, a lifelong personal number) written by then all differ from those of the CMND record:
--   at national scale thousands of different people share a name, a gender and a birth date (~1,000 CMND-only
--   members of the 12 M-member test data matched exactly one such stranger). A side without a BHXH code does not
--   block a match. n_bhxh_differs counts the CCCD people a CMND record was kept apart from that way only (a
--   mistyped BHXH code would look the same): dq_member_conflicts lists the records left with a key of their own.
--   A shared BHXH code makes up for a birth date known only to the year or month: a CMND record and a CCCD person
--   with the same name, gender and BHXH code match when their birth dates agree as far as the vaguer one goes
--   (the year, or the year and month). A legacy member written "1985" on one roster and in full on another is one
--   person (the national test data has such members, whose CCCD is written from a later month on); two people
--   never share a BHXH code, so a shared code with the same name is not a coincidence as a shared name is.
with rows_ as (
    -- every way a person was written on the current rosters, with its first month (int_identity_variants: kept
    -- month by month, so resolution reads one row per variant, not every roster row of all history)
    select cccd, cmnd, name_key, birth_date, birth_date_precision, gender, bhxh_code, first_period
    from {{ ref('int_identity_variants') }}
),

cmnd_cooccurring as (
    -- the CCCD a CMND belongs to by a roster row that paired them (macro cmnd_row_pairs: links_by_row)
    select cmnd, cccd
    from ({{ cmnd_row_pairs(ref('int_identity_variants')) }}) as p
    where links_by_row
),

cmnd_only as (
    select cmnd, name_key, birth_date, birth_date_precision, gender, min(first_period) as first_period
    from rows_
    where cccd is null and cmnd is not null
    group by all
),

cccd_people as (
    -- the CCCD people some CMND-only record could match (same name, gender and exact birth date): the matching
    -- below needs no other, so the 12 M CCCD variants of a national warehouse are not all grouped by their details
    select v.cccd, v.name_key, v.birth_date, v.birth_date_precision, v.gender, min(v.first_period) as first_period
    from rows_ as v
    where v.cccd is not null and v.birth_date_precision = 'day'
      and exists (select 1 from cmnd_only as c
                  where c.name_key = v.name_key and c.gender = v.gender and c.birth_date = v.birth_date
                    and c.birth_date_precision = 'day')
    group by v.cccd, v.name_key, v.birth_date, v.birth_date_precision, v.gender
),

cmnd_only_bhxh as (
    -- the CMND-only variants with a BHXH code (the second way to match: name, gender and BHXH code)
    select cmnd, name_key, birth_date, birth_date_precision, gender, bhxh_code, min(first_period) as first_period
    from rows_
    where cccd is null and cmnd is not null and bhxh_code is not null and birth_date is not null
    group by all
),

cccd_people_bhxh as (
    -- the CCCD variants sharing a name, a gender and a BHXH code with some CMND-only variant
    select v.cccd, v.name_key, v.birth_date, v.birth_date_precision, v.gender, v.bhxh_code,
           min(v.first_period) as first_period
    from rows_ as v
    where v.cccd is not null and v.birth_date is not null
      and exists (select 1 from cmnd_only_bhxh as c
                  where c.bhxh_code = v.bhxh_code and c.name_key = v.name_key and c.gender = v.gender)
    group by v.cccd, v.name_key, v.birth_date, v.birth_date_precision, v.gender, v.bhxh_code
),

variant_pairs as (
    -- a written variant of a CMND record and one of a CCCD person that match: same name, gender and exact birth
    -- date, or same name, gender and BHXH code with birth dates that agree as far as the vaguer one goes
    select c.cmnd, p.cccd, c.first_period as c_first, p.first_period as p_first
    from cmnd_only as c
    join cccd_people as p
      on p.name_key = c.name_key
     and p.gender = c.gender
     and p.birth_date = c.birth_date
     and p.birth_date_precision = 'day' and c.birth_date_precision = 'day'
    union all
    select c.cmnd, p.cccd, c.first_period, p.first_period
    from cmnd_only_bhxh as c
    join cccd_people_bhxh as p
      on p.bhxh_code = c.bhxh_code
     and p.name_key = c.name_key
     and p.gender = c.gender
    where case
        when 'year' in (c.birth_date_precision, p.birth_date_precision)
            then {{ dbt.date_trunc('year', 'c.birth_date') }} = {{ dbt.date_trunc('year', 'p.birth_date') }}
        when 'month' in (c.birth_date_precision, p.birth_date_precision)
            then {{ dbt.date_trunc('month', 'c.birth_date') }} = {{ dbt.date_trunc('month', 'p.birth_date') }}
        else c.birth_date = p.birth_date
    end
),

candidate_cccds as (
    select cccd from cccd_people
    union
    select cccd from cccd_people_bhxh
),

cmnd_bhxh as (
    -- the BHXH codes written for each CMND-only record, each with the first month it was written
    select cmnd, bhxh_code, min(first_period) as first_period
    from rows_
    where cccd is null and cmnd is not null and bhxh_code is not null
    group by cmnd, bhxh_code
),

cccd_bhxh as (
    -- the same for the CCCD people some CMND-only record could match
    select cccd, bhxh_code, min(first_period) as first_period
    from rows_
    where cccd in (select cccd from candidate_cccds) and bhxh_code is not null
    group by cccd, bhxh_code
),

cmnd_first as (
    select cmnd, min(first_period) as first_seen from cmnd_only group by cmnd
),

cccd_first as (
    -- when each of those CCCDs was first written, however (all its variants)
    select cccd, min(first_period) as first_seen
    from rows_
    where cccd in (select cccd from candidate_cccds)
    group by cccd
),

all_pairs as (
    -- CCCD people matching some written variant of a CMND record, whenever written
    select
        vp.cmnd,
        vp.cccd,
        greatest(cf.first_seen, pf.first_seen) as seen_together_from,
        {{ any_row("vp.c_first <= greatest(cf.first_seen, pf.first_seen) "
                       "and vp.p_first <= greatest(cf.first_seen, pf.first_seen)") }} as matched_when_first_together
    from variant_pairs as vp
    join cmnd_first as cf on cf.cmnd = vp.cmnd
    join cccd_first as pf on pf.cccd = vp.cccd
    group by vp.cmnd, vp.cccd, cf.first_seen, pf.first_seen
),

judged_pairs as (
    -- two different people by their BHXH codes: both had one written by the time they were first seen together,
    -- and none in common
    select
        a.*,
        exists (select 1 from cmnd_bhxh as cb
                where cb.cmnd = a.cmnd and cb.first_period <= a.seen_together_from)
        and exists (select 1 from cccd_bhxh as pb
                    where pb.cccd = a.cccd and pb.first_period <= a.seen_together_from)
        and not exists (select 1 from cmnd_bhxh as cb
                        join cccd_bhxh as pb on pb.bhxh_code = cb.bhxh_code
                        where cb.cmnd = a.cmnd and pb.cccd = a.cccd
                          and cb.first_period <= a.seen_together_from
                          and pb.first_period <= a.seen_together_from) as bhxh_differs
    from all_pairs as a
),

all_matches as (
    select cmnd, cccd, seen_together_from, matched_when_first_together from judged_pairs where not bhxh_differs
),

bhxh_kept_apart as (
    -- the CCCD people a CMND record would have matched when first seen together but for their BHXH codes: two
    -- strangers, or one person with a mistyped code (dq_member_conflicts lists the CMND records left with a key
    -- of their own for a data steward)
    select cmnd, count(distinct cccd) as n_bhxh_differs
    from judged_pairs
    where bhxh_differs and matched_when_first_together
    group by cmnd
),

candidates as (
    -- the matches that count: judged with the details written by the first month both had been seen
    select cmnd, cccd, seen_together_from from all_matches where matched_when_first_together
),

decision as (
    select cmnd, min(seen_together_from) as decided_at from candidates group by cmnd
),

cmnd_matches as (
    select
        c.cmnd,
        count(distinct m.cccd) filter (where m.matched_when_first_together
                                          and m.seen_together_from <= d.decided_at) as n_matches,
        min(m.cccd) filter (where m.matched_when_first_together
                            and m.seen_together_from <= d.decided_at)             as matched_cccd,
        count(distinct m.cccd) filter (where not m.matched_when_first_together
                                          or d.decided_at is null or m.seen_together_from > d.decided_at)
                                                                                    as n_later_matches
    from (select distinct cmnd from cmnd_only) as c
    left join decision as d on d.cmnd = c.cmnd
    left join all_matches as m on m.cmnd = c.cmnd
    group by c.cmnd
),

cccd_records as (
    {{ cccd_identity_records('rows_') }}
),

cmnd_records as (
    select
        'cmnd:' || m.cmnd        as identity_record,
        'cmnd'                   as record_type,
        case
            when co.cccd is not null then co.cccd
            when m.n_matches = 1 then m.matched_cccd
            else 'cmnd:' || m.cmnd
        end                      as identity_id,
        case
            when co.cccd is not null then 'cmnd_same_row'
            when m.n_matches = 1 then 'cmnd_linked'
            when m.n_matches > 1 then 'cmnd_ambiguous'
            else 'cmnd_only'
        end                      as resolution,
        case when co.cccd is not null then cast(0 as bigint) else cast(m.n_later_matches as bigint) end as n_later_matches,
        case when co.cccd is not null then cast(0 as bigint) else coalesce(b.n_bhxh_differs, 0) end as n_bhxh_differs,
        f.first_seen             as first_period
    from cmnd_matches as m
    join cmnd_first as f on f.cmnd = m.cmnd
    left join cmnd_cooccurring as co on co.cmnd = m.cmnd
    left join bhxh_kept_apart as b on b.cmnd = m.cmnd
)

select * from cccd_records
union all
select * from cmnd_records
