{{ config(materialized='table') }}  -- tested (4 tests) and resolved over all history: computed once, not per test
-- grain: one identity record (identity_record: a normalised CCCD, or 'cmnd:' || a legacy 9-digit CMND).
-- Resolves every record to one person (identity_id = the CCCD of the person, or the CMND record itself):
-- - a CCCD is its own person;
-- - a CMND seen in the same roster row as a CCCD belongs to that CCCD;
-- - otherwise a CMND is linked to a CCCD person when full name (normalised), birth date and gender
--   match exactly one CCCD person; else it stays its own person (resolution 'cmnd_only' or
--   'cmnd_ambiguous'). The match is exact: a birth date known only to the year or month never links
--   (common names share a birth year; a wrong link would merge two people).
with rows_ as (
    select distinct cccd, cmnd, name_key, birth_date, coalesce(birth_date_precision, 'day') as birth_date_precision, gender
    from {{ ref('int_roster_rows_monthly') }}
    where not is_carried_forward
),

cccd_people as (
    select distinct cccd, name_key, birth_date, birth_date_precision, gender from rows_ where cccd is not null
),

cmnd_cooccurring as (
    select cmnd, min(cccd) as cccd, count(distinct cccd) as n_cccd
    from rows_
    where cmnd is not null and cccd is not null
    group by cmnd
),

cmnd_only as (
    select distinct cmnd, name_key, birth_date, birth_date_precision, gender
    from rows_
    where cccd is null and cmnd is not null
),

cmnd_matches as (
    select
        c.cmnd,
        count(distinct p.cccd) as n_matches,
        min(p.cccd)            as matched_cccd
    from cmnd_only as c
    left join cccd_people as p
      on p.name_key = c.name_key
     and p.gender = c.gender
     and p.birth_date = c.birth_date
     and p.birth_date_precision = 'day' and c.birth_date_precision = 'day'
    group by c.cmnd
),

cccd_records as (
    select distinct
        cccd                     as identity_record,
        'cccd'                   as record_type,
        cccd                     as identity_id,
        'cccd'                   as resolution
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
        end                      as resolution
    from cmnd_matches as m
    left join cmnd_cooccurring as co on co.cmnd = m.cmnd
)

select * from cccd_records
union all
select * from cmnd_records
