{{ config(materialized='table') }}  -- tested (4 tests) and resolved over all history: computed once, not per test
-- grain: one identity record (identity_record: a normalised CCCD, or 'cmnd:' || a legacy 9-digit CMND).
-- Resolves every record to one person (identity_id = the CCCD of the person, or the CMND record itself):
-- - a CCCD is its own person;
-- - a CMND seen in the same roster row as a CCCD belongs to that CCCD;
-- - otherwise a CMND is linked to a CCCD person when full name (normalised), birth date and gender
--   match exactly one CCCD person at the decision month: the first month in which both the CMND and a
--   matching CCCD person had been seen (resolution 'cmnd_linked'); several matches by then: 'cmnd_ambiguous';
--   none ever: 'cmnd_only'. A CCCD person who appears later with the same details does not undo a link
--   (n_later_matches counts them; dq_member_conflicts lists the link as contested): keys stay stable when a
--   month is added, so the months already built keep theirs. The match is exact: a birth date known only to
--   the year or month never links (common names share a birth year; a wrong link would merge two people).
with rows_ as (
    select cccd, cmnd, name_key, birth_date, coalesce(birth_date_precision, 'day') as birth_date_precision, gender,
           min(period) as first_period
    from {{ ref('int_roster_rows_monthly') }}
    where not is_carried_forward
    group by all
),

cccd_people as (
    select cccd, name_key, birth_date, birth_date_precision, gender, min(first_period) as first_period
    from rows_ where cccd is not null
    group by all
),

cmnd_cooccurring as (
    select cmnd, min(cccd) as cccd, count(distinct cccd) as n_cccd
    from rows_
    where cmnd is not null and cccd is not null
    group by cmnd
),

cmnd_only as (
    select cmnd, name_key, birth_date, birth_date_precision, gender, min(first_period) as first_period
    from rows_
    where cccd is null and cmnd is not null
    group by all
),

candidates as (
    -- CCCD people matching a CMND record (some variant of it), with the first month both had been seen
    select
        c.cmnd,
        p.cccd,
        min(greatest(c.first_period, p.first_period)) as seen_together_from
    from cmnd_only as c
    join cccd_people as p
      on p.name_key = c.name_key
     and p.gender = c.gender
     and p.birth_date = c.birth_date
     and p.birth_date_precision = 'day' and c.birth_date_precision = 'day'
    group by c.cmnd, p.cccd
),

decision as (
    select cmnd, min(seen_together_from) as decided_at from candidates group by cmnd
),

cmnd_matches as (
    select
        c.cmnd,
        count(distinct m.cccd) filter (where m.seen_together_from <= d.decided_at) as n_matches,
        min(m.cccd) filter (where m.seen_together_from <= d.decided_at)            as matched_cccd,
        count(distinct m.cccd) filter (where m.seen_together_from > d.decided_at)  as n_later_matches
    from (select distinct cmnd from cmnd_only) as c
    left join decision as d on d.cmnd = c.cmnd
    left join candidates as m on m.cmnd = c.cmnd
    group by c.cmnd
),

cccd_records as (
    select distinct
        cccd                     as identity_record,
        'cccd'                   as record_type,
        cccd                     as identity_id,
        'cccd'                   as resolution,
        cast(0 as bigint)        as n_later_matches
    from cccd_people
),

cmnd_records as (
    select
        'cmnd:' || m.cmnd        as identity_record,
        'cmnd'                   as record_type,
        case
            when co.n_cccd = 1 then co.cccd
            when m.n_matches = 1 then m.matched_cccd
            else 'cmnd:' || m.cmnd
        end                      as identity_id,
        case
            when co.n_cccd = 1 then 'cmnd_same_row'
            when m.n_matches = 1 then 'cmnd_linked'
            when m.n_matches > 1 then 'cmnd_ambiguous'
            else 'cmnd_only'
        end                      as resolution,
        case when co.n_cccd = 1 then cast(0 as bigint) else cast(m.n_later_matches as bigint) end as n_later_matches
    from cmnd_matches as m
    left join cmnd_cooccurring as co on co.cmnd = m.cmnd
)

select * from cccd_records
union all
select * from cmnd_records
