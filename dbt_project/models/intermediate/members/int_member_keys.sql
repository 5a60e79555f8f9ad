{{ config(materialized='table') }}
-- grain: one identity record (identity_record). The pseudonymous member_key of its person:
-- keyed_hash(identity_id), the key being a session secret that is never stored (see README).
-- Materialised as a table so readers never need the secret.
-- A record whose person (identity_id) is the one the starting warehouse had keeps its stored key: only new and
-- re-resolved records are hashed (reuse is off if the stored keys were made with another secret).
-- The stored keys are read from this table as the build starts from it (dbt writes the new table under another
-- name and swaps it in), so the records that changed key keep it: previous_member_key (null when unchanged) and
-- is_new_record (not in the starting warehouse), read by int_member_key_changes. No copy of the 12 M stored keys.
{%- set stored = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier)
      if this is not none else none %}
{%- set stored_columns = adapter.get_columns_in_relation(stored) | map(attribute='name') | map('lower') | list
      if stored is not none else [] %}
with previous as (
    {%- if stored is not none %}
    select identity_record,
           {{ 'identity_id' if 'identity_id' in stored_columns else 'cast(null as varchar)' }} as identity_id,
           member_key
    from {{ stored }}
    {%- else %}
    select cast(null as varchar) as identity_record, cast(null as varchar) as identity_id,
           cast(null as {{ member_key_type() }}) as member_key
    where false
    {%- endif %}
),

same_secret as (
    select count(*) = 1 as ok
    from (select * from previous where identity_id is not null limit 1) as one
    where member_key = {{ keyed_hash('identity_id') }}
),

keyed as (
    select
        i.identity_record,
        i.record_type,
        i.identity_id,
        i.resolution,
        i.n_later_matches,
        i.n_bhxh_differs,
        case when p.identity_id = i.identity_id and (select ok from same_secret) then p.member_key
             else {{ keyed_hash('i.identity_id') }} end as member_key,
        p.member_key                                   as stored_member_key,
        p.identity_record is null                      as is_new_record
    from {{ ref('int_member_identities') }} as i
    left join previous as p on p.identity_record = i.identity_record
)

select
    identity_record,
    record_type,
    identity_id,
    resolution,
    n_later_matches,
    n_bhxh_differs,
    member_key,
    case when stored_member_key <> member_key then stored_member_key end as previous_member_key,
    is_new_record
from keyed
