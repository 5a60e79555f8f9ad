{{ config(**monthly_restatement(people='restated')) }}
-- grain: one membership event: member_key × period × event_type × cdcs_code.
-- Roster diffs month over month (period = the month whose roster shows the change; event_date = the
-- date the roster reports, or the month start when it reports none):
-- - exit from CĐCS A (counted at A last month, not now):
--     leaver row with reason 'transfer'          → transfer_out (other_cdcs_code = new unit this month)
--     leaver row with another reason             → leave (that reason)
--     no leaver row, now active in CĐCS B        → transfer_out (implied)
--     no leaver row, A closed as a public-sector unit (ownership hcsn/dvsn_100) → leave 'public_sector_exit'
--     no leaver row otherwise                    → leave 'other'
-- - entry into CĐCS B (counted at B now, not last month):
--     came straight from a CĐCS whose exit is a transfer, or a 'transfer' leaver row this or last month
--     (or since B's branch last submitted, when B's roster was carried forward last month; or in a later
--     roster of a branch that skipped the months between, dating the move into them, no later than this month)
--                                                → transfer_in (other_cdcs_code = old unit)
--     else, when B had members last month or the join date is in this month → join
--     else (first sight of an existing member: start of data, a branch's first roster) → no event
-- - a leaver row of someone not counted in that CĐCS last month (joined and left within the month, left in
--   the first month of data, or listed there while still counted on the carried-forward roster of the unit
--   they had left) → leave/transfer_out, plus, unless that CĐCS listed them last month, how they came:
--   transfer_in when another CĐCS has a 'transfer' leaver row of theirs in the months the row covers (that
--   transfer_out then names this CĐCS), else a join when the join date falls in those months (the month, or
--   since the branch's last roster when last month was carried forward).
-- Carried-forward months repeat a roster, so they create no event; an event seen after such a gap is dated
-- into the gap month it happened in (period = month of event_date when it falls in the gap).
-- An incremental table (keys only): a refresh computes the restated months from the month before them. When it
-- merged or split people whose records reach back before those months (restate_bounds.k), a second part computes
-- the events of the months k .. w - 1 of int_restated_people only: those people, and everyone counted in one of
-- their CĐCS then (the one thing an event reads from other people: whether the CĐCS had members last month).
{#- the tables restate_bounds reads, ref()'d whatever the run (dbt records dependencies at parse time) #}
{%- set _dependencies = [ref('int_roster_branch_months'), ref('int_member_key_changes'), ref('int_restated_people')] %}
{%- set b = restate_bounds() %}
{%- if b is not none and b.k is not none %}
  {%- set w = "cast('" ~ b.w ~ "' as date)" %}
  {%- set k = "cast('" ~ b.k ~ "' as date)" %}
  {%- set parts = [
        {'lo': w, 'hi': none, 'people': none},
        {'lo': k, 'hi': w, 'people': restated_people_sql('restated')}] %}
{%- else %}
  {%- set parts = [none] %}
{%- endif %}
{%- for part in parts %}
{%- if not loop.first %}

union all
-- the events of the months k .. w - 1 of int_restated_people
{%- endif %}
select * from (

with months as (
    select * from {{ ref('int_member_months') }}
    where {{ part_window(part, 'period', 1) }}{{ part_people(part, 'member_key') }}
),

unit_months as (
    select member_key, cdcs_code, next_period from {{ ref('int_member_unit_months') }}
    where {{ part_window(part, 'period', 1) }}{{ part_people(part, 'member_key') }}
),

leavers as (
    select
        r.period,
        k.member_key,
        r.cdcs_code,
        r.branch_code,
        r.leave_date,
        r.leave_reason_code,
        r.join_date,
        r.gender,
        r.birth_date,
        r.ethnicity_code,
        cast({{ dbt.dateadd('month', 1, 'r.period') }} as date) as next_period,
        row_number() over (
            partition by k.member_key, r.cdcs_code, r.period
            order by r.leave_date desc, r.file_id desc, r.source_row desc
        ) as rn
    from {{ ref('int_roster_rows_monthly') }} as r
    join {{ ref('int_member_keys') }} as k on k.identity_record = r.identity_record
    where not r.is_carried_forward
      and not r.is_active_at_month_end
      -- implied by the line above (a row active at month end has no leave date, or a later one), but stated on
      -- the raw column so DuckDB filters the Parquet rows before joining them to their branch months: the
      -- ~1 % of rows with a leave date instead of two months of every roster row (national: 8.6 -> 3.0 s)
      and r.leave_date is not null
      and {{ part_window(part, 'r.period', 1) }}
      and {{ raw_file_month_floor('r.file_month', part.lo if part is not none else none, lookback_months=1, carried_forward=true) }}
      {{- part_people(part, 'k.member_key') }}
),

leaver_rows as (
    -- the months a leaver row reports on: since the last roster its branch sent before this one (last month, or
    -- earlier when last month was carried forward: the row reports what happened in the gap). covered_from: the
    -- first of them; origin_lookback_from: that last roster's month, where an arrival's origin may be listed
    select
        l.*,
        coalesce(bm.source_period, cast({{ dbt.dateadd('month', -1, 'l.period') }} as date)) as origin_lookback_from,
        coalesce(cast({{ dbt.dateadd('month', 1, 'bm.source_period') }} as date), l.period)  as covered_from
    from leavers as l
    left join {{ ref('int_roster_branch_months') }} as bm
      on bm.branch_code = l.branch_code
     and bm.is_carried_forward
     and bm.period = cast({{ dbt.dateadd('month', -1, 'l.period') }} as date)
    where l.rn = 1
),

units as (
    select
        u.unit_code,
        case when max(case when u.valid_to is null then 1 else 0 end) = 1 then null
             else max(u.valid_to) end                                        as closed_on,
        max(case when o.is_public_sector_exit then 1 else 0 end) = 1         as is_public_sector_exit_unit
    from {{ ref('stg_registry__units') }} as u
    left join {{ ref('ownership_types') }} as o on o.code = u.ownership_type
    where u.unit_level = 'cdcs'
    group by u.unit_code
),

cdcs_prev_members as (
    select distinct cdcs_code, cast({{ dbt.dateadd('month', 1, 'period') }} as date) as period
    {%- if part is not none and part.people %}
    -- everyone's months, not only the part's people
    from {{ ref('int_member_months') }}
    where {{ part_window(part, 'period', 1) }}
    {%- else %}
    from months
    {%- endif %}
),

pairs as (
    -- the member's counted CĐCS this month and last month
    select
        coalesce(cur.period, cast({{ dbt.dateadd('month', 1, 'prev.period') }} as date)) as period,
        coalesce(cur.member_key, prev.member_key)    as member_key,
        prev.cdcs_code                               as prev_cdcs_code,
        cur.cdcs_code                                as cur_cdcs_code,
        cur.join_date                                as cur_join_date,
        cur.branch_code                              as cur_branch_code,
        coalesce(cur.gender, prev.gender)            as gender,
        coalesce(cur.birth_date, prev.birth_date)    as birth_date,
        coalesce(cur.ethnicity_code, prev.ethnicity_code) as ethnicity_code
    -- this month: the restated months only (a month before them, read as last month, would pair with the
    -- month before it, which is not read, and give 12 M entries at national scale that the final filter drops)
    from (select * from months where {{ part_window(part, 'period') }}) as cur
    full outer join months as prev
      on prev.member_key = cur.member_key
     and cast({{ dbt.dateadd('month', 1, 'prev.period') }} as date) = cur.period
    where coalesce(prev.cdcs_code, '') <> coalesce(cur.cdcs_code, '')
),

last_period as (
    {%- if part is not none and part.hi %}
    -- the part's last month (w - 1), whatever its people's latest month
    select cast({{ dbt.dateadd('month', -1, part.hi) }} as date) as period
    {%- else %}
    select max(period) as period from months
    {%- endif %}
),

exits as (
    select
        p.period,
        p.member_key,
        p.prev_cdcs_code                             as cdcs_code,
        p.cur_cdcs_code                              as dest_cdcs_code,
        l.leave_date,
        l.leave_reason_code,
        u.closed_on,
        coalesce(u.is_public_sector_exit_unit, false) as is_public_sector_exit_unit,
        p.gender, p.birth_date, p.ethnicity_code,
        case
            when l.leave_reason_code = 'transfer' then 'transfer_out'
            when l.leave_reason_code is not null then 'leave'
            when p.cur_cdcs_code is not null then 'transfer_out'
            else 'leave'
        end                                          as event_type
    from pairs as p
    left join leaver_rows as l
      on l.member_key = p.member_key and l.cdcs_code = p.prev_cdcs_code and l.period = p.period
    left join units as u on u.unit_code = p.prev_cdcs_code
    where p.prev_cdcs_code is not null
      and p.period <= (select period from last_period)
),

standalone_leavers as (
    -- leaver rows of people not counted in that CĐCS last month (and not reported last month). Listed there as
    -- active last month but counted elsewhere (a person still on the carried-forward roster of the CĐCS they had
    -- left, and already on the new one's): the leave is theirs all the same, but how they came is not told
    -- again (was_listed_last_month; the generator's period_expected rules)
    select l.*, um.member_key is not null as was_listed_last_month
    from leaver_rows as l
    left join unit_months as um
      on um.member_key = l.member_key and um.cdcs_code = l.cdcs_code and um.next_period = l.period
    left join months as m_prev
      on m_prev.member_key = l.member_key and m_prev.cdcs_code = l.cdcs_code
     and cast({{ dbt.dateadd('month', 1, 'm_prev.period') }} as date) = l.period
    left join leaver_rows as l_prev
      on l_prev.member_key = l.member_key and l_prev.cdcs_code = l.cdcs_code and l_prev.next_period = l.period
    left join months as m_now
      on m_now.member_key = l.member_key and m_now.cdcs_code = l.cdcs_code and m_now.period = l.period
    where m_prev.member_key is null and l_prev.member_key is null
      and m_now.member_key is null  -- also listed as active there this month: the entry side handles it
),

transfer_leaver_rows as (
    -- covered_from (leaver_rows): a row seen after its branch skipped months tells of a move in the gap
    select member_key, cdcs_code, period, next_period, leave_date, covered_from
    from leaver_rows
    where leave_reason_code = 'transfer'
),

standalone_origins as (
    -- a standalone leaver who had arrived by transfer (and left again before a month end in the new unit): the
    -- 'transfer' leaver row of the same person in another CĐCS, in the months the leaver row covers
    select
        l.member_key,
        l.period,
        l.cdcs_code,
        t.cdcs_code  as origin_cdcs_code,
        t.period     as origin_period,
        t.leave_date as origin_date,
        row_number() over (
            partition by l.member_key, l.period, l.cdcs_code
            order by t.period desc, t.cdcs_code
        ) as rn
    from standalone_leavers as l
    join transfer_leaver_rows as t
      on t.member_key = l.member_key
     and t.cdcs_code <> l.cdcs_code
     and t.period <= l.period
     and t.period >= l.origin_lookback_from
),

standalone_entries as (
    select
        l.*,
        o.origin_cdcs_code,
        o.origin_period,
        o.origin_date
    from standalone_leavers as l
    left join standalone_origins as o
      on o.member_key = l.member_key and o.period = l.period and o.cdcs_code = l.cdcs_code and o.rn = 1
),

standalone_destinations as (
    -- the unit a transfer_out went to when the person left it again before a month end there
    select member_key, origin_cdcs_code, origin_period, min(cdcs_code) as dest_cdcs_code
    from standalone_entries
    where origin_cdcs_code is not null
    group by member_key, origin_cdcs_code, origin_period
),

exits_with_destination as (
    select x.*, d.dest_cdcs_code as standalone_dest_cdcs_code
    from exits as x
    left join standalone_destinations as d
      on x.event_type = 'transfer_out' and x.dest_cdcs_code is null
     and d.member_key = x.member_key and d.origin_cdcs_code = x.cdcs_code and d.origin_period = x.period
),

entries as (
    select
        p.period,
        p.member_key,
        p.cur_cdcs_code                              as cdcs_code,
        p.cur_join_date                              as join_date,
        p.gender, p.birth_date, p.ethnicity_code,
        -- origin: straight from another counted CĐCS whose exit is a transfer
        case when x.event_type = 'transfer_out' then p.prev_cdcs_code end as direct_origin,
        case when x.event_type = 'transfer_out' then x.leave_date end     as direct_origin_date,
        cpm.cdcs_code is not null                    as cdcs_had_members,
        -- earliest month a 'transfer' leaver row elsewhere can pair with: last month, or the last month the
        -- branch of B submitted when last month was carried forward (the move happened in the gap)
        coalesce(bm.source_period, cast({{ dbt.dateadd('month', -1, 'p.period') }} as date)) as origin_lookback_from
    from pairs as p
    left join exits as x
      on x.member_key = p.member_key and x.period = p.period and x.cdcs_code = p.prev_cdcs_code
    left join cdcs_prev_members as cpm
      on cpm.cdcs_code = p.cur_cdcs_code and cpm.period = p.period
    left join {{ ref('int_roster_branch_months') }} as bm
      on bm.branch_code = p.cur_branch_code
     and bm.is_carried_forward
     and bm.period = cast({{ dbt.dateadd('month', -1, 'p.period') }} as date)
    where p.cur_cdcs_code is not null
),

transfer_origins as (
    -- a 'transfer' leaver row of the same person in another CĐCS, this month or last month (or, after months
    -- B's branch did not submit, any month since its last roster: the incremental window reaches back there);
    -- or one in a later roster of a branch that did not submit the months between, when it dates the move into
    -- those months, no later than this one (A's branch skipped November and its December roster tells of a move
    -- on 19 November to B, where the November roster shows the person). Rows of a roster up to this month first.
    select
        e.member_key,
        e.period,
        e.cdcs_code,
        t.cdcs_code  as origin_cdcs_code,
        t.leave_date as origin_date,
        row_number() over (
            partition by e.member_key, e.period, e.cdcs_code
            order by case when t.period <= e.period then 0 else 1 end, t.period desc, t.cdcs_code
        ) as rn
    from entries as e
    join transfer_leaver_rows as t
      on t.member_key = e.member_key
     and t.cdcs_code <> e.cdcs_code
     and (t.period <= e.period and t.period >= e.origin_lookback_from
          or t.period > e.period
             and cast({{ dbt.date_trunc('month', 't.leave_date') }} as date) between e.origin_lookback_from and e.period
             and cast({{ dbt.date_trunc('month', 't.leave_date') }} as date) >= t.covered_from)
    where e.direct_origin is null
),

entries_with_origin as (
    select
        e.*,
        coalesce(e.direct_origin, t.origin_cdcs_code)    as origin_cdcs_code,
        coalesce(e.direct_origin_date, t.origin_date)    as origin_date
    from entries as e
    left join transfer_origins as t
      on t.member_key = e.member_key and t.period = e.period and t.cdcs_code = e.cdcs_code and t.rn = 1
),

events as (
    -- exits
    select
        period,
        coalesce(
            leave_date,
            case when leave_reason_code is null and dest_cdcs_code is null
                      and is_public_sector_exit_unit and closed_on < period
                 then cast({{ dbt.dateadd('day', 1, 'closed_on') }} as date) end,
            period)                                  as event_date,
        member_key,
        cdcs_code,
        event_type,
        case
            when event_type <> 'leave' then null
            when leave_reason_code is not null then leave_reason_code
            when is_public_sector_exit_unit and closed_on < period then 'public_sector_exit'
            else 'other'
        end                                          as leave_reason_code,
        case when event_type = 'transfer_out' then coalesce(dest_cdcs_code, standalone_dest_cdcs_code) end as other_cdcs_code,
        leave_reason_code is null                    as is_inferred,
        gender, birth_date, ethnicity_code
    from exits_with_destination

    union all
    -- entries
    select
        period,
        case when origin_cdcs_code is not null then coalesce(origin_date, join_date, period)
             else coalesce(join_date, period) end    as event_date,
        member_key,
        cdcs_code,
        case when origin_cdcs_code is not null then 'transfer_in' else 'join' end as event_type,
        null                                         as leave_reason_code,
        origin_cdcs_code                             as other_cdcs_code,
        false                                        as is_inferred,
        gender, birth_date, ethnicity_code
    from entries_with_origin
    where origin_cdcs_code is not null
       or cdcs_had_members
       or join_date >= period

    union all
    -- standalone leaver rows
    select
        l.period,
        l.leave_date                                 as event_date,
        l.member_key,
        l.cdcs_code,
        case when l.leave_reason_code = 'transfer' then 'transfer_out' else 'leave' end as event_type,
        case when l.leave_reason_code = 'transfer' then null else l.leave_reason_code end as leave_reason_code,
        case when l.leave_reason_code = 'transfer' then m.cdcs_code end as other_cdcs_code,
        false                                        as is_inferred,
        l.gender, l.birth_date, l.ethnicity_code
    from standalone_leavers as l
    left join months as m on m.member_key = l.member_key and m.period = l.period

    union all
    -- ... and how they came: a transfer_in when another CĐCS lists them as transferred out in the months the
    -- leaver row covers, else a join when the join date falls in those months (since the branch's last roster)
    select
        l.period,
        case when l.origin_cdcs_code is not null then coalesce(l.origin_date, l.join_date, l.period)
             else l.join_date end                    as event_date,
        l.member_key,
        l.cdcs_code,
        case when l.origin_cdcs_code is not null then 'transfer_in' else 'join' end as event_type,
        null                                         as leave_reason_code,
        l.origin_cdcs_code                           as other_cdcs_code,
        false                                        as is_inferred,
        l.gender, l.birth_date, l.ethnicity_code
    from standalone_entries as l
    where not l.was_listed_last_month
      and (l.origin_cdcs_code is not null
           or l.join_date >= l.covered_from)
),

cdcs_report as (
    -- the roster month each CĐCS stood on last month (earlier than last month when it was carried forward)
    select cdcs_code, cast({{ dbt.dateadd('month', 1, 'period') }} as date) as next_period,
           max(report_period) as report_period
    from {{ ref('int_member_unit_months') }}
    where {{ part_window(part, 'period', 1) }}
    group by cdcs_code, period
),

dated as (
    -- an event seen in a roster that follows months the branch did not submit is dated into the month it
    -- happened (when its date falls in that gap); otherwise it belongs to the roster's month
    select
        e.*,
        cast({{ dbt.date_trunc('month', 'e.event_date') }} as date) as event_month,
        coalesce(cast({{ dbt.dateadd('month', 1, 'r.report_period') }} as date), e.period) as window_start
    from events as e
    left join cdcs_report as r on r.cdcs_code = e.cdcs_code and r.next_period = e.period
),

final as (
    select
        case when event_month >= window_start and event_month < period then event_month else period end as period,
        event_date,
        member_key,
        cdcs_code,
        event_type,
        leave_reason_code,
        other_cdcs_code,
        is_inferred,
        gender,
        birth_date,
        ethnicity_code,
        period as observed_period
    from dated
)

select * from final
where {{ part_window(part, 'period') }}

) as events_of_part
{%- endfor %}
