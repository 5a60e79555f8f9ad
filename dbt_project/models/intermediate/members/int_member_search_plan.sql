{{ config(materialized='table') }}
-- grain: one row (this build). Whether the member search (restricted.member_search, member_search_tokens) is
-- rebuilt from nothing or brought up to date (macros/member_search.sql): rebuilt when there is no stored search
-- (a build from nothing) or when a quarter of its people were given a rank between two others since it was last
-- numbered (their rows sit after the sorted ones, so the search's first row groups no longer hold the first names
-- alone). Computed before either model runs, so both take the same way.
-- DOANVIEN_SEARCH_RENUMBER=always renumbers it whatever the share (an operator's choice; the tests' way to take
-- that path).
{%- set stored = member_search_stored() %}
{%- set gap = member_search_gap() %}
{%- set forced = env_var('DOANVIEN_SEARCH_RENUMBER', '') | trim | lower == 'always' %}
{%- if stored is none %}
select true as rebuild, cast(0 as bigint) as stored_people, cast(0 as bigint) as placed_people
{%- else %}
select
    {{ 'true or ' if forced }}placed_people * 4 > stored_people as rebuild,
    stored_people,
    placed_people
from (
    select
        count(*) as stored_people,
        count(*) filter (where name_rank % {{ gap }} <> 0) as placed_people
    from {{ stored }}
) as s
{%- endif %}
