-- grain: one person (member_key). RESTRICTED: the member search of pipelines.access (with
-- member_search_tokens), read only through pipelines.access.
-- The people in the order the search lists them (full_name, then member_key), numbered 1..N by name_rank,
-- with the columns a hit list shows (copied from member_pii; cdcs_code is dim_member's current CĐCS there).
-- The first matches of a search are its smallest name_ranks: neighbouring rows of this table, read together,
-- instead of one random row of member_pii and one of dim_member per hit.
select
    cast(row_number() over (order by full_name, member_key) as integer) as name_rank,
    member_key,
    full_name,
    name_search,
    member_code,
    cccd,
    birth_date,
    cdcs_code
from {{ ref('member_pii') }}
order by name_rank
