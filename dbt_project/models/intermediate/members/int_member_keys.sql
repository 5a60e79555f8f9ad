{{ config(materialized='table') }}
-- grain: one identity record (identity_record). The pseudonymous member_key of its person:
-- keyed_hash(identity_id), the key being a session secret that is never stored (see README).
-- Materialised as a table so readers never need the secret.
-- A record whose person (identity_id) is the one the starting warehouse had keeps its stored key: only new and
-- re-resolved records are hashed (reuse is off if the stored keys were made with another secret).
with previous as (
    select identity_record, identity_id, member_key from {{ ref('int_member_keys_previous') }}
),

same_secret as (
    select count(*) = 1 as ok
    from (select * from previous where identity_id is not null limit 1) as one
    where member_key = {{ keyed_hash('identity_id') }}
)

select
    i.identity_record,
    i.record_type,
    i.identity_id,
    i.resolution,
    i.n_later_matches,
    case when p.identity_id = i.identity_id and (select ok from same_secret) then p.member_key
         else {{ keyed_hash('i.identity_id') }} end as member_key
from {{ ref('int_member_identities') }} as i
left join previous as p on p.identity_record = i.identity_record
