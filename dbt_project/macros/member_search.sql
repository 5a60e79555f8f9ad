{#-
  The member search kept up to date instead of sorted again every build (restricted.member_search and
  member_search_tokens; the people who changed: int_member_search_changes; whether to rebuild:
  int_member_search_plan).

  name_rank orders the people by (full_name, member_key). A build from nothing numbers them 1..N times
  `member_search_gap()` (2^32), so a rank can later be given between two neighbours. A build from a stored search
  deletes the rows of the people whose search record changed or who are gone, and inserts the new and changed
  people with a rank between the stored neighbours they fall between in that order (k people in one gap share it
  evenly). The ranks then still order the people exactly as (full_name, member_key), which is all the search
  reads from them; a build from nothing gives the same order with other numbers. The search rebuilds from nothing
  when a quarter of the stored people were placed that way (int_member_search_plan) or when a gap is too narrow
  for the people it must take (practically never with 2^32 between neighbours).
-#}

{% macro member_search_gap() -%}4294967296{%- endmacro %}

{#- the order of the search as one text: the full name (a missing one after every name, as ORDER BY puts nulls
    last), then the key; chr(1) sorts below every character of a name, so a name that is the beginning of
    another comes first, as in ORDER BY full_name, member_key -#}
{% macro member_search_sort_key(name, key) -%}
  coalesce({{ name }}, chr(1114111)) || chr(1) || {{ key }}
{%- endmacro %}

{#- the stored member_search this build starts from (the relation as the graph places it, not ref()'d: the
    models that read it run before it), or none when there is none or the build starts from nothing -#}
{% macro member_search_stored() -%}
  {%- if not execute or flags.FULL_REFRESH -%}{{ return(none) }}{%- endif -%}
  {%- set node = graph.nodes['model.' ~ project_name ~ '.member_search'] -%}
  {{ return(adapter.get_relation(database=this.database, schema=node.schema, identifier=node.alias)) }}
{%- endmacro %}

{#- whether member_search and member_search_tokens are rebuilt from nothing in this build (when they are
    incremental at all): the plan says so, or a new rank found no room in its gap -#}
{% macro member_search_rebuild() -%}
  {%- if not execute -%}{{ return(true) }}{%- endif -%}
  {%- set row = run_query("select coalesce((select rebuild from " ~ ref('int_member_search_plan') ~ "), true)"
        ~ " or exists (select 1 from " ~ ref('int_member_search_changes')
        ~ " where not is_removed and name_rank is null)").rows[0] -%}
  {{ return(row[0]) }}
{%- endmacro %}

{#- pre_hook of member_search and member_search_tokens: on a build from a stored search, the rows of the
    people who changed or are gone (by their stored rank), or every row when the search is rebuilt -#}
{% macro member_search_delete() -%}
  {%- if is_incremental() -%}
    {%- if member_search_rebuild() -%}
    delete from {{ this }}
    {%- else -%}
    delete from {{ this }} where name_rank in (
        select old_rank from {{ ref('int_member_search_changes') }} where old_rank is not null)
    {%- endif -%}
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}
