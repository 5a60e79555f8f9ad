{{ config(materialized='table') }}
-- depends_on: {{ ref('member_pii') }}
-- grain: one person whose member search record this build changes (member_key, a UUID as in every intermediate
-- model): new, changed (name, code, CCCD, birth date or current CĐCS) or gone. IDENTIFYING (names, CCCD, birth
-- dates): intermediate schema, never in the analysts' file. Empty when the search is rebuilt from nothing
-- (int_member_search_plan).
-- Found by comparing each person's record with the stored search by a 64-bit fingerprint of its columns (one
-- join of the people on their key; the chance that a changed record keeps its fingerprint is 2^-64). The new and
-- changed people get the rank between the stored people they fall between in the order (full_name, member_key):
-- one sort of the kept stored people and the new rows together; k new people between the same two neighbours
-- share that gap evenly; a gap too narrow leaves name_rank null, and the search is then rebuilt
-- (macros/member_search.sql).
{%- set stored = member_search_stored() %}
{%- set plan = ref('int_member_search_plan') %}
{%- set rebuild = true %}
{%- if stored is not none and execute %}
  {%- set rebuild = run_query("select rebuild from " ~ plan).rows[0][0] %}
{%- endif %}
{%- set cols = ['full_name', 'name_search', 'member_code', 'cccd', 'birth_date', 'cdcs_code'] %}
{%- set gap = member_search_gap() %}

{%- if rebuild %}

select
    cast(null as {{ member_key_type() }}) as member_key,
    {%- for c in cols %}
    cast(null as {{ 'date' if c == 'birth_date' else dbt.type_string() }}) as {{ c }},
    {%- endfor %}
    cast(null as bigint) as old_rank,
    cast(null as boolean) as is_removed,
    cast(null as bigint) as name_rank
where false

{%- else %}

with new_records as (
    select member_key, {{ cols | join(', ') }}, {{ row_fingerprint(cols) }} as fingerprint
    from {{ ref('member_pii') }}
),

stored_records as (
    select member_key, name_rank, {{ row_fingerprint(cols) }} as fingerprint
    from {{ stored }}
),

differences as (
    select
        coalesce(n.member_key, s.member_key) as member_key,
        s.name_rank as old_rank,
        n.member_key is null as is_removed
    from new_records as n
    full outer join stored_records as s on s.member_key = n.member_key
    where n.member_key is null or s.member_key is null or n.fingerprint <> s.fingerprint
),

placed as (
    select n.member_key, {% for c in cols %}n.{{ c }}, {% endfor %}d.old_rank,
           {{ member_search_sort_key('n.full_name', 'n.member_key') }} as sort_key
    from new_records as n
    join differences as d on d.member_key = n.member_key
    where not d.is_removed
),

neighbours as (
    -- the kept stored people (their rank) and the placed ones (null rank) in one order: each placed person's
    -- nearest kept neighbour before and after
    select
        sort_key,
        {{ nearest_non_null('stored_rank', 'sort_key', 'before') }} as previous_rank,
        {{ nearest_non_null('stored_rank', 'sort_key', 'after') }} as next_rank,
        stored_rank is null as is_placed
    from (
        select {{ member_search_sort_key('s.full_name', 's.member_key') }} as sort_key, s.name_rank as stored_rank
        from {{ stored }} as s
        where s.name_rank not in (select old_rank from differences where old_rank is not null)
        union all
        select sort_key, cast(null as bigint) from placed
    ) as u
),

gaps as (
    select
        p.*,
        coalesce(nb.previous_rank, 0) as previous_rank,
        nb.next_rank,
        row_number() over (partition by coalesce(nb.previous_rank, 0) order by p.sort_key) as position,
        count(*) over (partition by coalesce(nb.previous_rank, 0)) as people_in_gap
    from placed as p
    join neighbours as nb on nb.sort_key = p.sort_key and nb.is_placed
)

select
    cast(member_key as {{ member_key_type() }}) as member_key,
    {%- for c in cols %}
    {{ c }},
    {%- endfor %}
    old_rank,
    false as is_removed,
    case
        when next_rank is null then previous_rank + position * {{ gap }}
        when (next_rank - previous_rank) / (people_in_gap + 1) >= 1
            then previous_rank + position * cast(floor((next_rank - previous_rank) / (people_in_gap + 1)) as bigint)
    end as name_rank
from gaps

union all

select
    cast(member_key as {{ member_key_type() }}) as member_key,
    {%- for c in cols %}
    cast(null as {{ 'date' if c == 'birth_date' else dbt.type_string() }}) as {{ c }},
    {%- endfor %}
    old_rank,
    true as is_removed,
    cast(null as bigint) as name_rank
from differences
where is_removed

{%- endif %}
