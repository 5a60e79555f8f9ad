{{ config(materialized='table') }}
-- grain: one identity record (identity_record) whose member_key differs from the one the starting warehouse
-- gave it. Links are decided so that adding a month keeps old keys (int_member_identities), but a new month can
-- still re-key an old record: a CMND-only member whose CCCD person first appears now becomes linked, a roster
-- row shows a CMND beside a CCCD, a late correction changes the evidence. Two kinds:
-- - is_pure_rename: the old person (every record that had previous_member_key) is exactly the new person (every
--   old record that now has member_key): the stored rows only need the new key (rekey_stored_rows, a pre-hook
--   of the month-restated models), no figure of those months changes;
-- - otherwise people merge or split: every month from first_period (the record's first own roster month) is
--   restated (restate_start_sql).
-- Empty on a build from nothing.
with old_and_new as (
    -- records of the starting warehouse that still exist, with their old and new keys (int_member_keys keeps the
    -- old key of a record whose key changed)
    select identity_record, coalesce(previous_member_key, member_key) as previous_member_key, member_key,
           first_period
    from {{ ref('int_member_keys') }}
    where not is_new_record
),

changed as (
    select * from old_and_new where member_key <> previous_member_key
),

old_people as (
    -- how many new keys the records of each changed old key went to
    select previous_member_key, count(distinct member_key) as n_new_keys
    from old_and_new
    where previous_member_key in (select previous_member_key from changed)
    group by previous_member_key
),

new_people as (
    -- how many old keys the (old) records of each new key came from
    select member_key, count(distinct previous_member_key) as n_old_keys
    from old_and_new
    where member_key in (select member_key from changed)
    group by member_key
)

select
    c.identity_record,
    c.previous_member_key,
    c.member_key,
    (o.n_new_keys = 1 and n.n_old_keys = 1) as is_pure_rename,
    -- the record's first own roster month (int_member_keys.first_period: its variants' earliest)
    c.first_period
from changed as c
join old_people as o on o.previous_member_key = c.previous_member_key
join new_people as n on n.member_key = c.member_key
