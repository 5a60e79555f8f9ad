{{ config(
    materialized='incremental',
    incremental_strategy='replace_records',
    on_schema_change='append_new_columns'
) }}
-- grain: one identity record (identity_record). The pseudonymous member_key of its person:
-- keyed_hash(identity_id), the key being a session secret that is never stored (see README).
-- Materialised as a table so readers never need the secret.
-- A record whose person (identity_id) is the one the starting warehouse had keeps its stored key: only new and
-- re-resolved records are hashed (reuse is off if the stored keys were made with another secret).
-- The stored keys are read from this table as the build starts from it, so the records that changed key keep
-- it: previous_member_key (null when unchanged) and is_new_record (not in the starting warehouse), read by
-- int_member_key_changes. first_period: the first month the record was written on a current roster.
--
-- Kept in place month by month (macros/member_keys.sql): a CCCD record is its own person, so its row never
-- changes once written (same secret) but for its two flags. A build that restates the months from W on
-- (restate_from(), as int_identity_variants) computes only the CMND records (all re-resolved: ~10,000 in the
-- national test data) and the CCCD records first written from W on (the others have a variant from
-- before W, which no restated month can remove); the strategy `replace_records` clears the flags the last build
-- set in place, deletes the stored rows of those records (and every stored CMND record and CCCD record first
-- written from W on, so a record a restated month no longer has goes) and inserts them. A build from nothing,
-- one that restates every month, or one whose stored keys were made with another secret writes every record.
{%- set win = member_keys_window() %}
{%- set identities = ref('int_member_identities') %}
{%- set variants = ref('int_identity_variants') %}
{%- set stored = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier)
      if this is not none else none %}
{%- set stored_columns = adapter.get_columns_in_relation(stored) | map(attribute='name') | map('lower') | list
      if stored is not none else [] %}
with previous as (
    {%- if stored is not none %}
    select identity_record,
           {{ 'identity_id' if 'identity_id' in stored_columns else 'cast(null as varchar)' }} as identity_id,
           member_key
           {%- if win is not none %},
           record_type, first_period
           {%- endif %}
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

{%- if win is none %}

resolved as (
    select * from {{ identities }}
),

{%- else %}

resolved as (
    -- every CMND record, re-resolved (the CCCD records' branch of the view is pruned by the filter)
    select * from {{ identities }}
    where record_type = 'cmnd'
    union all
    -- the CCCD records first written from W on, except records stored with an earlier first month (a person
    -- written a new way: the record and its row are unchanged)
    {{ cccd_identity_records(variants, "first_period >= cast('" ~ win ~ "' as date) and cccd not in ("
                             ~ "select identity_record from previous where record_type = 'cccd' "
                             ~ "and first_period < cast('" ~ win ~ "' as date))") }}
),

{%- endif %}

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
        p.identity_record is null                      as is_new_record,
        i.first_period
    from resolved as i
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
    is_new_record,
    first_period
from keyed
