-- grain: one word of a person's accent-folded name × person (token, name_rank). RESTRICTED: read only through
-- pipelines.access. The postings of the member search by name: a search for "nguyen an" reads the postings
-- of its rarest word only (a range of this table, stored sorted by token, so DuckDB's zone maps skip every
-- other row group), keeps the rows whose name_search holds every word of the query and whose cdcs_code is in
-- the official's scope, and takes the smallest name_ranks; member_search gives their records.
-- A word repeated in one name gives one row.
select
    w.token,
    s.name_rank,
    s.name_search,
    s.cdcs_code
from {{ ref('member_search') }} as s,
    unnest(list_distinct(string_split(s.name_search, ' '))) as w(token)
where w.token <> ''
order by w.token, s.name_rank
