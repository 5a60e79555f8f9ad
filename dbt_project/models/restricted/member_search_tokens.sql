{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ member_search_delete() }}") }}
-- grain: one word of a person's accent-folded name × person (token, name_rank). RESTRICTED: read only through
-- pipelines.access. The postings of the member search by name: a search for "nguyen an" reads the postings
-- of its rarest word only (a range of this table, stored sorted by token, so DuckDB's zone maps skip every
-- other row group), keeps the rows whose name_search holds every word of the query and whose cdcs_code is in
-- the official's scope, and takes the smallest name_ranks; member_search gives their records.
-- A word repeated in one name gives one row.
-- Kept up to date as member_search is (macros/member_search.sql): the postings of the people who changed or are
-- gone are deleted, the new and changed people's appended (a word's postings are then its range of the sorted
-- rows plus the few row groups each later build appended; bench/README.md measures what that costs a search).
{%- set from_changes = is_incremental() and not member_search_rebuild() %}
{%- set _dependencies = [ref('member_search'), ref('int_member_search_changes'), ref('int_member_search_plan')] %}
select
    w.token,
    s.name_rank,
    s.name_search,
    s.cdcs_code
from {{ ref('int_member_search_changes') if from_changes else ref('member_search') }} as s,
    unnest(list_distinct(string_split(s.name_search, ' '))) as w(token)
where w.token <> ''{{ ' and not s.is_removed' if from_changes }}
order by w.token, s.name_rank
