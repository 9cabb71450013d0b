defmodule ElixirScope.Query do
  @moduledoc """
  Questions about the recording as plain data: a query spec is a keyword list (or map)
  that the C store evaluates — filters through its indexes, predicates on the stored
  fields, ordering, paging, projections and aggregates — and that can be kept, sent to
  another node or built from a web request, since it holds nothing but atoms, numbers,
  pids, binaries and the values compared.

      iex> {:ok, _} = ElixirScope.TraceDB.start_link(name: :query_doc)
      iex> for {status, path} <- [{200, "/"}, {500, "/cart/1"}, {404, "/x"}, {503, "/cart/2"}] do
      ...>   ElixirScope.TraceDB.store_event(:request, %{status: status, path: path}, store: :query_doc)
      ...> end
      iex> ElixirScope.Query.run(type: :request, where: [status: {:>=, 500}], select: [:path], store: :query_doc)
      ...> |> Enum.map(& &1.path)
      ["/cart/1", "/cart/2"]
      iex> ElixirScope.Query.run(type: :request, where: [path: {:prefix, "/cart"}], select: :count, store: :query_doc)
      2
      iex> {[first], cursor} = ElixirScope.Query.page(type: :request, limit: 1, store: :query_doc)
      iex> first.status
      200
      iex> {[second], _} = ElixirScope.Query.page(type: :request, limit: 1, after: cursor, store: :query_doc)
      iex> second.status
      500
      iex> [%{count: 4, p50: 404, max: 503}] =
      ...>   ElixirScope.Query.run(type: :request, measure: :status, store: :query_doc) |> List.wrap()
      iex> ElixirScope.TraceDB.stop(:query_doc)
      :ok

  ## Filters (all optional, combined with *and*)

    * `:type` — an event type or a list of them;
    * `:pid` (or `:from_pid`) — the process the event is about, or a list; `:to_pid` —
      the receiving process of a message, or a list (`pid: a, to_pid: b`: messages from
      `a` to `b`; lists: any of the combinations);
    * `:between` — `{pid_a, pid_b}`: events from either one to the other;
    * `:module`, `:function` (with `:module`) — the code involved, each an atom or a list;
    * `:timestamp_start`, `:timestamp_end` — inclusive bounds, native units, or
      `DateTime`s (`ElixirScope.WallClock`);
    * `:after_id`, `:before_id` — exclusive bounds on event ids;
    * `:where` — predicates on the other fields of the stored event (below).

  Every filter but `:where` and the bounds is answered by an index: a list is answered
  by walking one index chain per element and merging them, so the cost follows the
  events of those keys, not the store.

  ## Predicates

  `where:` takes `{field, test}` pairs, all of which must hold. The field is a
  top-level field of the event's map (not one of the indexed fields above: `:pid`,
  `:to_pid`, `:module`, ... have their own filters), or `{field, index}` /
  `{field, [index, ...]}` for an element of a tuple or list under it (`{:args, 1}`: a
  call's second argument). Tests:

    * a value, or `{:==, value}` — equal (`===`: `1` is not `1.0`);
    * `{:in, [value, ...]}` — equal to one of them;
    * `{:<, n}`, `{:<=, n}`, `{:>, n}`, `{:>=, n}`, `{:between, low, high}` (inclusive) —
      a number compared numerically (integers within 64 bits and floats);
    * `{:prefix, binary}` — a binary that starts with these bytes;
    * `{:not, test}` — the test does not hold.

  A test on a field the event does not have (or a comparison with something that is no
  number, a prefix of something that is no binary) does not hold — so `{:not, test}`
  does. To compare with a tuple that starts with one of these operator atoms, write
  `{:==, tuple}`. Predicates are evaluated in C on the stored bytes of each event the
  filters leave, without building the event.

  The store keeps, for each block of 256 events that a query has tested a field in, a
  summary of the values that field takes there (per event type): a Bloom filter of the
  values, the least and greatest integer and float, and the first bytes of binaries.
  Later queries on that field — with any value — pass over the blocks where no event can
  pass: equality and `{:in, list}`, comparisons and ranges, and prefixes of four bytes or
  more use them; `{:not, test}` and elements under a field do not. So the first query on
  a field reads every event it filters, and the next ones read only the blocks that may
  hold an answer.

  ## Order, limits and cursors

  Results come sorted by timestamp, then id (`order: :desc` reverses), cut to `:limit`.
  `page/1` also returns a cursor — an opaque binary — that continues the listing:
  `after: cursor` gives the events after it, `before: cursor` (with `order: :desc`) the
  ones before it, so a listing pages both ways. `cursor/1` makes one from an event (an
  event itself may be given too), and `nil` is no bound: the start of a listing.

  A listing that goes on from its cursor sees every event at or beyond the cursor's
  position that was in the store when the listing began — none twice, none skipped —
  except events pruned meanwhile. An event appended later is part of the listing only
  if its position is beyond the cursor: one stored later with an earlier timestamp (a
  `timestamp:` given to `ElixirScope.TraceDB.store_event/3`) is not.

  ## What comes back

    * `select: :events` (default) — the events, maps with every field;
    * `select: [field, ...]` — maps with only these fields (and `:id`, `:type`,
      `:timestamp`): nothing else is decoded;
    * `select: :ids` — event ids;
    * `select: :count` — how many events match (at most `:limit`).

  Aggregates: `group_by:` `:type`, `:pid`, `:module`, `:function` (`{module, function}`)
  or a field (as in `where:`), and/or `measure:` a numeric field. The result is a list
  of `%{group: key, count: n}` (most events first), with `measure:` also `:measured`
  (how many had a number there), `:min`, `:max`, `:mean`, `:p50`, `:p90`, `:p99` — exact
  nearest-rank percentiles, the smallest value with at least that share of the values
  at or below it. With `measure:` and no `group_by:`, one map. Events without the
  grouping field form the group `nil`. Aggregates cover every event that matches
  (`:limit` does not apply) and run on a dirty scheduler.

  `:store` names a store other than the default `ElixirScope.TraceDB`.

  Queries that may take longer than about a millisecond run on a dirty scheduler. A
  malformed spec raises `ArgumentError` naming the bad part; no atom is ever created
  from a spec.
  """

  alias ElixirScope.TraceDB

  @type spec :: keyword() | map()
  @type cursor :: binary()

  @filter_keys [
    :type,
    :pid,
    :from_pid,
    :to_pid,
    :between,
    :module,
    :function,
    :timestamp_start,
    :timestamp_end,
    :after_id,
    :before_id,
    :after,
    :before,
    :where,
    :limit,
    :order,
    :select,
    :group_by,
    :measure,
    :store
  ]

  @indexed [:id, :type, :timestamp, :pid, :from_pid, :to_pid, :module, :function, :arity]
  @groups [:type, :pid, :module, :function]
  @operators [:==, :in, :<, :<=, :>, :>=, :between, :prefix, :not]
  @int64 Range.new(-(2 ** 63), 2 ** 63 - 1)
  @uint64 Range.new(0, 2 ** 64 - 1)
  @cursor_tag "esq1."

  @doc "The keys a spec may have."
  @spec keys() :: [atom()]
  def keys, do: @filter_keys

  @doc """
  Runs a spec: the events (or fields, ids, count, aggregate) it selects.

  Raises `ArgumentError` for a malformed spec and `RuntimeError` when the store is not
  running.
  """
  @spec run(spec()) :: [map()] | [pos_integer()] | non_neg_integer() | map()
  def run(spec) do
    {store, native} = normalize!(spec)
    TraceDB.run_query(store, native)
  end

  @doc """
  A page of a listing and the cursor after its last item (`nil` when nothing follows):
  pass it back as `after:` (or, going backwards with `order: :desc`, as `before:`).
  """
  @spec page(spec()) :: {[map()] | [pos_integer()], cursor() | nil}
  def page(spec) do
    {store, native} = normalize!(spec)

    if Map.has_key?(native, :group_by) or Map.has_key?(native, :measure) or
         native[:select] == :count,
       do: raise(ArgumentError, "page/1 pages listings: counts and aggregates have no pages")

    {items, next} = TraceDB.run_page(store, native)
    {items, next && encode_cursor(next)}
  end

  @doc "How many events a spec selects."
  @spec count(spec()) :: non_neg_integer()
  def count(spec), do: spec |> to_map!() |> Map.put(:select, :count) |> run()

  @doc """
  The cursor at an event (a map with `:timestamp` and `:id`, as every listing returns)
  or at a `{timestamp, id}` position: `after:` it lists what follows the event.
  """
  @spec cursor(map() | {integer(), non_neg_integer()}) :: cursor()
  def cursor(%{timestamp: ts, id: id}) when is_integer(ts) and is_integer(id),
    do: cursor({ts, id})

  def cursor({ts, id}) when ts in @int64 and id in @uint64, do: encode_cursor({ts, id})

  def cursor(other),
    do:
      raise(
        ArgumentError,
        "cursor/1 expects an event or a {timestamp, id} position, got: #{inspect(other)}"
      )

  @doc false
  # {store name, the spec in the form the C engine reads}.
  def normalize!(spec) do
    map = to_map!(spec)
    {name, map} = Map.pop(map, :store, TraceDB)
    unless is_atom(name), do: bad(:store, "a store name (an atom)", name)
    map = wall_times(map, name)
    native = Enum.reduce(map, %{}, fn {key, value}, acc -> put(acc, key, value) end)
    native = if is_map_key(map, :from_pid), do: merge_actors(native, map), else: native

    if is_map_key(map, :function) and not is_map_key(map, :module),
      do: raise(ArgumentError, "filter :function needs :module")

    if (Map.has_key?(native, :group_by) or Map.has_key?(native, :measure)) and
         Map.has_key?(native, :select),
       do: raise(ArgumentError, "select: cannot be combined with group_by: or measure:")

    {name, native}
  end

  defp to_map!(spec) when is_map(spec), do: spec

  defp to_map!(spec) when is_list(spec) do
    if Keyword.keyword?(spec),
      do: Map.new(spec),
      else: raise(ArgumentError, "filters must be a keyword list or a map, got: #{inspect(spec)}")
  end

  defp to_map!(spec),
    do: raise(ArgumentError, "filters must be a keyword list or a map, got: #{inspect(spec)}")

  defp unknown!(key) do
    raise ArgumentError,
          "unknown filter #{inspect(key)}; allowed: " <>
            Enum.map_join(@filter_keys, ", ", &inspect/1)
  end

  defp bad(key, expected, value),
    do: raise(ArgumentError, "filter #{inspect(key)} must be #{expected}, got: #{inspect(value)}")

  # :pid and :from_pid both name the actor: given both, an event must match both.
  defp merge_actors(native, map) do
    case {map[:pid], map[:from_pid]} do
      {nil, nil} ->
        native

      {_, nil} ->
        native

      {nil, from} ->
        native |> Map.delete(:from_pid) |> Map.put(:pid, list_of(from))

      {pid, from} ->
        both = Enum.filter(list_of(pid), &(&1 in list_of(from)))
        native |> Map.delete(:from_pid) |> Map.put(:pid, both)
    end
  end

  # Bounds given as DateTimes become timestamps through the store's wall clock.
  defp wall_times(map, name) do
    Enum.reduce([:timestamp_start, :timestamp_end], map, fn key, acc ->
      case acc do
        %{^key => %DateTime{} = at} ->
          Map.put(acc, key, ElixirScope.WallClock.timestamp(at, store: name))

        _ ->
          acc
      end
    end)
  end

  defp list_of(v) when is_list(v), do: v
  defp list_of(v), do: [v]

  defp put(acc, key, v) when key in [:type, :module, :function],
    do: Map.put(acc, key, atoms!(key, v))

  defp put(acc, key, v) when key in [:pid, :from_pid, :to_pid],
    do: Map.put(acc, key, pids!(key, v))

  defp put(acc, :between, {a, b} = v) when is_pid(a) and is_pid(b),
    do: Map.put(acc, :between, v)

  defp put(_acc, :between, v), do: bad(:between, "a {pid, pid} tuple", v)

  defp put(acc, key, v) when key in [:timestamp_start, :timestamp_end] do
    if is_integer(v) and v in @int64,
      do: Map.put(acc, key, v),
      else: bad(key, "an integer or a DateTime", v)
  end

  defp put(acc, key, v) when key in [:after_id, :before_id, :limit] do
    if is_integer(v) and v in @uint64,
      do: Map.put(acc, key, v),
      else: bad(key, "a non-negative integer", v)
  end

  defp put(acc, :order, v) when v in [:asc, :desc], do: Map.put(acc, :order, v)
  defp put(_acc, :order, v), do: bad(:order, ":asc or :desc", v)
  defp put(acc, key, nil) when key in [:after, :before], do: acc
  defp put(acc, key, v) when key in [:after, :before], do: Map.put(acc, key, position!(key, v))
  defp put(acc, :where, v), do: Map.put(acc, :where, where!(v))
  defp put(acc, :select, v), do: Map.put(acc, :select, select!(v))
  defp put(acc, :group_by, v), do: Map.put(acc, :group_by, group!(v))

  defp put(acc, :measure, v) do
    if is_atom(v) and v not in @indexed and v != nil,
      do: Map.put(acc, :measure, v),
      else: bad(:measure, "the name of a numeric field of the events", v)
  end

  defp put(_acc, key, _v), do: unknown!(key)

  defp atoms!(_key, v) when is_atom(v), do: [v]

  defp atoms!(key, v) do
    list = list_of(v)

    if list != [] and length(list) <= 64 and Enum.all?(list, &is_atom/1),
      do: Enum.uniq(list),
      else: bad(key, "an atom or a list of at most 64 atoms", v)
  end

  defp pids!(_key, v) when is_pid(v), do: [v]

  defp pids!(key, v) do
    list = list_of(v)

    if list != [] and length(list) <= 64 and Enum.all?(list, &is_pid/1),
      do: Enum.uniq(list),
      else: bad(key, "a pid or a list of at most 64 pids", v)
  end

  defp position!(_key, %{timestamp: ts, id: id}) when ts in @int64 and id in @uint64,
    do: {ts, id}

  defp position!(key, @cursor_tag <> _ = cursor) do
    with {:ok, <<ts::signed-64, id::64>>} <-
           Base.url_decode64(binary_part(cursor, 5, byte_size(cursor) - 5), padding: false) do
      {ts, id}
    else
      _ -> bad(key, "a cursor (from page/1 or cursor/1) or an event", cursor)
    end
  end

  defp position!(key, v), do: bad(key, "a cursor (from page/1 or cursor/1) or an event", v)

  defp encode_cursor({ts, id}),
    do: @cursor_tag <> Base.url_encode64(<<ts::signed-64, id::64>>, padding: false)

  ## where:

  defp where!(conditions) do
    unless is_list(conditions) and length(conditions) <= 64,
      do: bad(:where, "a list of at most 64 {field, test} pairs", conditions)

    Enum.map(conditions, fn
      {field, test} ->
        {name, path} = field!(:where, field)

        if name in @indexed,
          do:
            raise(
              ArgumentError,
              "where: #{inspect(name)} is an indexed field, not a stored one: select it " <>
                "with the top-level filters (:type, :pid, :to_pid, :module, :function, " <>
                ":timestamp_start, ...)"
            )

        {op, negate, arg} = test!(name, test, false)
        {name, path, op, negate, arg}

      other ->
        bad(:where, "a list of {field, test} pairs", other)
    end)
  end

  defp field!(_key, name) when is_atom(name) and name != nil, do: {name, []}

  defp field!(key, {name, index} = field) when is_atom(name) and name != nil do
    path = list_of(index)

    if path != [] and length(path) <= 4 and
         Enum.all?(path, &(is_integer(&1) and &1 in 0..65_535)),
       do: {name, path},
       else: bad(key, "a field name or {field, index | [index, ...]} (at most 4 indexes)", field)
  end

  defp field!(key, other), do: bad(key, "a field name or {field, index}", other)

  defp test!(name, {:not, test}, negate), do: test!(name, test, not negate)
  defp test!(_name, {:==, v}, negate), do: {:eq, negate, [v]}

  defp test!(name, {:in, list} = test, negate) do
    if is_list(list) and list != [] and length(list) <= 4096,
      do: {:eq, negate, list},
      else: bad_test(name, test, "{:in, list} needs a list of 1 to 4096 values")
  end

  defp test!(name, {op, n} = test, negate) when op in [:<, :<=, :>, :>=] do
    unless number?(n), do: bad_test(name, test, "a comparison needs a number")
    {%{<: :lt, <=: :le, >: :gt, >=: :ge}[op], negate, n}
  end

  defp test!(name, {:between, lo, hi} = test, negate) do
    unless number?(lo) and number?(hi), do: bad_test(name, test, "a range needs two numbers")
    {:range, negate, {lo, hi}}
  end

  defp test!(name, {:prefix, p} = test, negate) do
    unless is_binary(p), do: bad_test(name, test, "a prefix must be a binary")
    {:prefix, negate, p}
  end

  defp test!(name, test, negate) when is_tuple(test) and tuple_size(test) in 2..3 do
    if elem(test, 0) in @operators,
      do: bad_test(name, test, "malformed test"),
      else: {:eq, negate, [test]}
  end

  defp test!(_name, value, negate), do: {:eq, negate, [value]}

  defp number?(n), do: (is_integer(n) and n in @int64) or is_float(n)

  defp bad_test(name, test, why),
    do:
      raise(
        ArgumentError,
        "where: #{inspect({name, test})}: #{why} (tests: value, {:==, v}, {:in, list}, " <>
          "{:<, n}, {:<=, n}, {:>, n}, {:>=, n}, {:between, lo, hi}, {:prefix, binary}, " <>
          "{:not, test}; numbers within 64 bits)"
      )

  ## select:, group_by:

  defp select!(v) when v in [:events, :ids, :count], do: v

  defp select!(fields) when is_list(fields) and fields != [] and length(fields) <= 64 do
    if Enum.all?(fields, &(is_atom(&1) and &1 != nil)),
      do: Enum.uniq(fields),
      else: bad(:select, ":events, :ids, :count or a list of field names", fields)
  end

  defp select!(v), do: bad(:select, ":events, :ids, :count or a list of field names", v)

  defp group!(v) when v in @groups, do: v

  defp group!(v) do
    {name, path} = field!(:group_by, v)

    if name in @indexed,
      do: bad(:group_by, ":type, :pid, :module, :function or a stored field", v)

    {:field, name, path}
  end
end
