{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ member_search_delete() }}") }}
-- grain: one person (member_key). RESTRICTED: the member search of pipelines.access (with
-- member_search_tokens), read only through pipelines.access.
-- The people in the order the search lists them (full_name, then member_key), ordered by name_rank, with the
-- columns a hit list shows (copied from member_pii; cdcs_code is dim_member's current CĐCS there).
-- The first matches of a search are its smallest name_ranks: neighbouring rows of this table, read together,
-- instead of one random row of member_pii and one of dim_member per hit.
-- Kept up to date (macros/member_search.sql): a build from a stored search deletes the people who changed or are
-- gone and appends the new and changed ones (int_member_search_changes, their ranks between their neighbours'),
-- instead of sorting 12 M names again; a build from nothing, or a rebuild
-- (int_member_search_plan), numbers everyone 1..N times member_search_gap().
{%- set cols = ['member_key', 'full_name', 'name_search', 'member_code', 'cccd', 'birth_date', 'cdcs_code'] %}
{%- if is_incremental() and not member_search_rebuild() %}
select name_rank, {{ member_key_text('member_key') }} as member_key, {{ cols[1:] | join(', ') }}
from {{ ref('int_member_search_changes') }}
where not is_removed
{%- else %}
{%- set _dependencies = [ref('int_member_search_changes'), ref('int_member_search_plan')] %}
select
    cast(row_number() over (order by full_name, member_key) as bigint) * {{ member_search_gap() }} as name_rank,
    {{ cols | join(', ') }}
from {{ ref('member_pii') }}
{%- endif %}
order by name_rank
