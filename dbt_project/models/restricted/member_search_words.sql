-- grain: one word of the accent-folded names (token). RESTRICTED: read only through pipelines.access.
-- How many people have the word in their name: the length of its postings in member_search_tokens, which the
-- search by name reads to choose the rarest word of a query (pipelines.access.warehouse.name_token_count).
-- Counting a word on the postings themselves reads its whole range, and after builds that kept the postings up
-- to date also a row group of every build since (~10 ms at national); this table answers with one row. Counted
-- again from the postings every build: a few thousand words, under a second at national.
select
    token,
    count(*) as n_people
from {{ ref('member_search_tokens') }}
group by token
order by token
