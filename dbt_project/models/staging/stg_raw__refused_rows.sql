-- grain: one refused row × broken rule (file_id × source_sheet × source_row × rule × column). The quarantine is
-- loose files plus compacted segments (pipelines.ingest.quarantine): rows read twice while being compacted are
-- identical and kept once.
with source as (
    select distinct * from {{ raw_relation('raw', 'quarantine') }}
)
select
    file_id,
    source_sheet,
    cast(source_row as {{ dbt.type_bigint() }})   as source_row,
    "rule"                                        as rule_code,
    "column"                                      as column_name,
    cast("value" as {{ dbt.type_string() }})      as raw_value,
    message_vi,
    message_en
from source
