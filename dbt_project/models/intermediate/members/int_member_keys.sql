{{ config(materialized='table') }}
-- depends_on: {{ ref('int_member_keys_previous') }}  (the previous keys are saved before this table is replaced)
-- grain: one identity record (identity_record). The pseudonymous member_key of its person:
-- keyed_hash(identity_id), the key being a session secret that is never stored (see README).
-- Materialised as a table so readers never need the secret.
select
    identity_record,
    record_type,
    identity_id,
    resolution,
    n_later_matches,
    {{ keyed_hash('identity_id') }} as member_key
from {{ ref('int_member_identities') }}
