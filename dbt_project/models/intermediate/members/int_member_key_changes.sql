{{ config(materialized='table') }}
-- grain: one identity record (identity_record) whose member_key differs from the one the starting warehouse
-- gave it. A new month can change how an old record resolves: a legacy CMND becomes linked when its person's
-- CCCD first appears, or ambiguous when a second person with the same name, birth date and gender does. The
-- months already stored under the old key must then be restated too: first_period (the record's first own
-- roster month) moves an incremental run's window back (period_window). Empty on a build from nothing.
with changed as (
    select p.identity_record, p.member_key as previous_member_key, k.member_key
    from {{ ref('int_member_keys_previous') }} as p
    join {{ ref('int_member_keys') }} as k on k.identity_record = p.identity_record
    where k.member_key <> p.member_key
)

select
    c.identity_record,
    c.previous_member_key,
    c.member_key,
    min(r.period) as first_period
from changed as c
join {{ ref('int_roster_rows_monthly') }} as r
  on r.identity_record = c.identity_record
 and not r.is_carried_forward
group by all
