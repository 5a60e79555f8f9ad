{{ config(materialized='table') }}
-- grain: one received file version (file_id). A small table (one row per file: the ledger is read once per
-- build, not by every model). Ranks accepted versions within branch × period × kind:
-- the latest received_at wins (ties: later ingested_at, then file_id); duplicates and refused files are
-- never current.
with files as (
    select * from {{ ref('stg_raw__files') }}
),

ranked as (
    select
        files.*,
        case when status = 'accepted' then
            row_number() over (
                partition by branch_code, period, kind, (status = 'accepted')
                order by received_at desc, ingested_at desc, file_id desc
            )
        end as accepted_version_rank
    from files
)

select
    *,
    coalesce(accepted_version_rank = 1, false) as is_current_version,
    coalesce(accepted_version_rank > 1, false) as is_superseded
from ranked
