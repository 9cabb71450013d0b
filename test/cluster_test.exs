defmodule ElixirScope.ClusterTest do
  # Three (and more) distributed peer nodes; the test VM controls them over standard I/O
  # and stays undistributed itself. Timing is never asserted: waits poll with generous
  # deadlines.
  use ExUnit.Case, async: false

  alias ElixirScope.Cluster
  alias ElixirScope.Cluster.Result
  alias ElixirScope.Test.{ClusterApp, ClusterPeers}

  import ClusterPeers, only: [call: 3, call: 4, eventually: 1]

  doctest ElixirScope.Cluster

  @moduletag timeout: 180_000

  # A coordinator and two members, connected, ElixirScope started on all three from the
  # coordinator, a request handled across them.
  defp cluster!(opts \\ []) do
    c = ClusterPeers.start!("coord")
    members = for i <- 1..Keyword.get(opts, :members, 2), do: ClusterPeers.start!("m#{i}")
    ClusterPeers.connect!(c, members)
    nodes = Enum.map(members, &elem(&1, 1))
    :ok = call(c, ElixirScope, :setup, [[tracing_level: :full, nodes: nodes]])
    {c, members}
  end

  defp request!(c, [m1 | _] = members) do
    inventory = call(m1, ClusterApp, :start_inventory)
    subscribers = for p <- [c | members], do: call(p, ClusterApp, :start_subscriber)
    request = call(c, ClusterApp, :request, [inventory, subscribers, 3])

    for s <- subscribers,
        do: assert(eventually(fn -> call(c, ClusterApp, :received, [s]) == [{:stock, 97}] end))

    %{inventory: inventory, subscribers: subscribers, request: request}
  end

  # {node, id} of every event of a result
  defp keys(events), do: Enum.map(events, &{&1.node, &1.id})

  defp inversions(events) do
    at = events |> Enum.with_index() |> Map.new(fn {e, i} -> {{e.node, e.id}, i} end)

    for %{type: :receive, sent_by: {_, _} = send} = e <- events,
        Map.has_key?(at, send) and at[send] > at[{e.node, e.id}],
        do: e
  end

  test "setup starts ElixirScope on every node; a request across three nodes is one merged, matched stream" do
    {c, [m1, m2] = members} = cluster!()
    assert call(m1, ElixirScope, :running?, [])
    assert call(m2, ElixirScope, :running?, [])
    assert Enum.sort(call(c, Cluster, :members, [])) == Enum.sort([elem(m1, 1), elem(m2, 1)])
    # The servers run only where asked: the members got no MCP server.
    assert call(m1, Process, :whereis, [ElixirScope.MCP]) == nil

    %{inventory: inv, subscribers: subs, request: req} = request!(c, members)

    %Result{events: events, missing: []} =
      call(c, Cluster, :query, [[type: [:send, :receive], pid: [req, inv | subs]]])

    assert Enum.map(events, & &1.node) |> Enum.uniq() |> Enum.sort() ==
             Enum.sort([elem(c, 1), elem(m1, 1), elem(m2, 1)])

    # The call crosses from the coordinator to m1 and its reply back: both matched by tag.
    call_recv =
      Enum.find(events, &match?(%{type: :receive, message: {:"$gen_call", _, {:reserve, 3}}}, &1))

    assert call_recv.node == elem(m1, 1)
    assert {node_c, _} = call_recv.sent_by
    assert node_c == elem(c, 1)

    reply_recv = Enum.find(events, &match?(%{type: :receive, pid: ^req, message: {_, 97}}, &1))
    assert {node_m1, _} = reply_recv.sent_by
    assert node_m1 == elem(m1, 1)

    # The broadcast reached a subscriber on every node, each receive matched to its send.
    stock = for %{type: :receive, message: {:stock, 97}} = e <- events, do: e
    assert length(stock) == 3
    assert Enum.all?(stock, &match?({_, _}, &1.sent_by))
    assert inversions(events) == []

    # message_flow across nodes: call, its receive, the reply, its receive, in order.
    {flow, []} = call(c, Cluster, :message_flow, [req, inv])

    assert [
             {:send, {:"$gen_call", _, {:reserve, 3}}},
             {:receive, {:"$gen_call", _, {:reserve, 3}}},
             {:send, {_, 97}},
             {:receive, {_, 97}}
           ] = Enum.map(flow, &{&1.type, &1.message})

    assert Enum.map(flow, & &1.node) == [elem(c, 1), elem(m1, 1), elem(m1, 1), elem(c, 1)]

    # The facade: a process's queries run on its node, message_flow/3 merges nodes,
    # listings answer for every node of the coordinator's cluster unless told otherwise.
    assert Enum.map(call(c, ElixirScope, :message_flow, [req, inv]), & &1.id) ==
             Enum.map(flow, & &1.id)

    assert [%{state: 100}, %{state: 97}] = call(c, ElixirScope, :state_timeline, [inv])

    all = Enum.sort([elem(c, 1), elem(m1, 1), elem(m2, 1)])
    crashes = call(c, ElixirScope, :recent_crashes, [[nodes: :all]])
    assert Enum.sort(Map.keys(crashes)) == all
    assert Enum.sort(Map.keys(call(c, ElixirScope, :recent_crashes, [[]]))) == all
    assert is_list(call(c, ElixirScope, :recent_crashes, [[nodes: :local]]))

    assert Map.keys(call(c, ElixirScope, :recent_crashes, [[nodes: elem(m1, 1)]])) == [
             elem(m1, 1)
           ]

    # a member answers for itself
    assert is_list(call(m1, ElixirScope, :recent_crashes, [[]]))

    # Phoenix's listings take nodes: too (requests recorded on two nodes, as the
    # telemetry handler stores them), merged in one list, each with its node.
    for {peer, status} <- [{c, 500}, {m2, 503}] do
      :ok =
        call(peer, ElixirScope.TraceDB, :store_event, [
          :phoenix,
          %{kind: :endpoint, phase: :stop, method: "GET", path: "/cart", status: status}
        ])
    end

    requests = call(c, ElixirScope.Phoenix, :requests, [[status: {:>=, 500}, nodes: :all]])

    assert Enum.sort(Enum.map(requests, &{&1.node, &1.status})) ==
             Enum.sort([{elem(c, 1), 500}, {elem(m2, 1), 503}])

    assert [%{status: 500}] = call(c, ElixirScope.Phoenix, :requests, [[status: {:>=, 500}]])

    # The nodes share this host's system clock: the true skew, 0, lies within the
    # estimate's error bound (half the shortest round trip).
    %{skew: skew, error: error, rtt: rtt} =
      call(c, ElixirScope.Cluster.Clock, :skew, [elem(m1, 1), [fresh: true]])

    assert abs(skew) <= error
    assert error * 2 >= rtt

    # Skew injected into the estimate (±50 ms) leaves no receive before its send.
    ms50 = System.convert_time_unit(50, :millisecond, :native)

    %Result{events: skewed} =
      call(c, Cluster, :query, [
        [type: [:send, :receive], pid: [req, inv | subs]],
        [inject_skew: %{elem(m1, 1) => -ms50, elem(c, 1) => ms50}]
      ])

    assert inversions(skewed) == []
    assert Enum.count(skewed, &match?(%{type: :receive, sent_by: {_, _}}, &1)) >= 5

    for %{type: :receive, sent_by: {_, _} = s} = r <- skewed do
      send = Enum.find(skewed, &({&1.node, &1.id} == s))
      assert r.cluster_time > send.cluster_time
    end

    # Pages of 3 across the merge: every event once, none skipped.
    pages =
      Stream.unfold(nil, fn
        :done ->
          nil

        cursor ->
          %Result{events: evs, cursor: next, missing: []} =
            call(c, Cluster, :page, [[type: [:send, :receive], limit: 3, after: cursor]])

          {evs, next || :done}
      end)
      |> Enum.to_list()

    all = call(c, Cluster, :query, [[type: [:send, :receive]]]).events
    paged = List.flatten(pages)
    assert length(pages) > 2
    assert Enum.sort(keys(paged)) == Enum.sort(keys(all))
    assert Enum.uniq(keys(paged)) == keys(paged)

    # MCP tools take a node: the coordinator's server answers from that node's store.
    config = call(c, ElixirScope.MCP, :validate!, [[port: 0]])
    inv_text = call(m1, Kernel, :inspect, [inv])
    m1_name = Atom.to_string(elem(m1, 1))

    %{"isError" => false, "content" => [%{"text" => text}]} =
      call(c, ElixirScope.MCP.Tools, :call, [
        "elixir_scope_get_state_timeline",
        %{"pid_string" => inv_text, "node" => m1_name},
        config
      ])

    assert text =~ "97"

    %{"isError" => true, "content" => [%{"text" => text}]} =
      call(c, ElixirScope.MCP.Tools, :call, [
        "elixir_scope_status",
        %{"node" => "nowhere@x"},
        config
      ])

    assert text =~ "not in this cluster"
    assert text =~ m1_name

    # The web UI's API takes node= too.
    ctx = %{csrf: "token", body: ""}

    {200, meta} =
      call(c, ElixirScope.UI.API, :handle, ["GET", ["meta"], %{"node" => m1_name}, ctx])

    assert meta["node"] == m1_name
    assert length(meta["nodes"]) == 3
    {200, meta} = call(c, ElixirScope.UI.API, :handle, ["GET", ["meta"], %{}, ctx])
    assert meta["node"] == Atom.to_string(elem(c, 1))
    assert length(meta["nodes"]) == 3

    {400, %{"error" => error}} =
      call(c, ElixirScope.UI.API, :handle, ["GET", ["meta"], %{"node" => "nowhere@x"}, ctx])

    assert error =~ "not in this cluster"

    # Exports: one group of tracks per node, messages as arrows across them.
    dir = Path.join(System.tmp_dir!(), "es_cluster_#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    on_exit(fn -> File.rm_rf!(dir) end)
    json = Path.join(dir, "trace.json")

    assert {:ok, %{nodes: 3, flows: flows}, []} =
             call(c, ElixirScope, :export, [json, [nodes: :all]])

    assert flows >= 5
    trace = ElixirScope.JSON.decode!(File.read!(json))["traceEvents"]
    groups = for %{"name" => "process_name", "args" => %{"name" => n}} <- trace, do: n
    assert Enum.sort(groups) == Enum.sort(Enum.map([c, m1, m2], &Atom.to_string(elem(&1, 1))))

    mmd = Path.join(dir, "flow.mmd")

    assert {:ok, %{nodes: 3, arrows: arrows}, []} =
             call(c, ElixirScope, :export, [mmd, [format: :mermaid, nodes: :all]])

    assert arrows >= 5
    assert File.read!(mmd) =~ "box #{elem(m2, 1)}"

    # Per node and for the cluster: supervision trees and snapshots.
    {trees, []} = call(c, Cluster, :supervision_trees, [])
    assert map_size(trees) == 3

    {snaps, []} = call(c, Cluster, :system_snapshots_at, [DateTime.utc_now()])
    assert map_size(snaps) == 3

    # ElixirScope.stop/0 on the coordinator stops the members' recordings.
    :ok = call(c, ElixirScope, :stop, [])
    refute call(m1, ElixirScope, :running?, [])
    # ... and what they recorded stays queryable there.
    assert call(m1, ElixirScope.Query, :count, [[type: :receive]]) > 0
  end

  test "a node that hangs or dies mid-query is named in a partial result" do
    {c, [m1, m2] = members} = cluster!()
    _ = request!(c, members)
    os = ClusterPeers.os_pid(m2)
    on_exit(fn -> ClusterPeers.kill(os) end)

    # Hung (SIGSTOP): the others' events come back, m2 is named as timed out (the
    # timeout leaves a loaded machine's live nodes time to answer).
    :ok = ClusterPeers.signal(os, "STOP")

    %Result{events: events, missing: missing} =
      call(c, Cluster, :query, [[type: :receive], [timeout: 3_000]])

    assert missing == [{elem(m2, 1), :timeout}]
    assert events != []
    refute Enum.any?(events, &(&1.node == elem(m2, 1)))

    # Killed while the query waits for it.
    task = Task.async(fn -> call(c, Cluster, :query, [[type: :receive], [timeout: 60_000]]) end)
    Process.sleep(200)
    :ok = ClusterPeers.signal(os, "KILL")
    %Result{events: events, missing: [{node, reason}]} = Task.await(task, 60_000)
    assert node == elem(m2, 1)
    assert reason == :noconnection
    assert Enum.any?(events, &(&1.node == elem(m1, 1)))
  end

  test "a member cut off from the coordinator stops recording; queries name it" do
    {c, [m1, m2]} = cluster!()
    assert call(m2, ElixirScope, :running?, [])
    # The cut: m2 refuses the coordinator's cookie from now on, and drops the link.
    call(m2, :erlang, :set_cookie, [elem(m2, 1), :another_cookie])
    call(m2, :erlang, :disconnect_node, [elem(c, 1)])

    assert eventually(fn -> not call(m2, ElixirScope, :running?, []) end)
    assert call(m1, ElixirScope, :running?, [])

    %Result{missing: missing} = call(c, Cluster, :query, [[type: :spawn], [timeout: 1_000]])
    assert [{node, _}] = missing
    assert node == elem(m2, 1)
  end

  test "a coordinator's death or hang stops the recording it started, not one set up locally" do
    c = ClusterPeers.start!("coord")
    [m1, m2, m3] = members = for i <- 1..3, do: ClusterPeers.start!("m#{i}")
    ClusterPeers.connect!(c, members)
    # m3 runs ElixirScope set up locally: it joins, keeping its own recording.
    :ok = call(m3, ElixirScope, :setup, [[tracing_level: :minimal]])
    :ok = call(c, ElixirScope, :setup, [[nodes: [elem(m1, 1), elem(m3, 1)]]])
    assert call(m1, ElixirScope, :running?, [])

    # Hung coordinator: heartbeats stop, the recording stops.
    os = ClusterPeers.os_pid(c)
    on_exit(fn -> ClusterPeers.kill(os) end)
    :ok = ClusterPeers.signal(os, "STOP")
    assert eventually(fn -> not call(m1, ElixirScope, :running?, []) end)
    :ok = ClusterPeers.signal(os, "KILL")

    # Dead coordinator (a new one): the member it started stops.
    c2 = ClusterPeers.start!("coord2")
    ClusterPeers.connect!(c2, [m2])
    :ok = call(c2, ElixirScope, :setup, [[nodes: [elem(m2, 1)]]])
    assert call(m2, ElixirScope, :running?, [])
    ClusterPeers.stop(c2)
    assert eventually(fn -> not call(m2, ElixirScope, :running?, []) end)

    assert call(m3, ElixirScope, :running?, [])
  end

  test "nodes without ElixirScope, or with another version, are refused with the reason" do
    dir = Path.join(System.tmp_dir!(), "es_cluster_#{System.unique_integer([:positive])}")
    on_exit(fn -> File.rm_rf!(dir) end)
    c = ClusterPeers.start!("coord")
    bare = ClusterPeers.start!("bare", elixir_scope: false)
    m1 = ClusterPeers.start!("m1")
    ClusterPeers.connect!(c, [bare, m1])

    assert {:partial, [nodes: [{node, :elixir_scope_not_loaded}]]} =
             call(c, ElixirScope, :setup, [
               [nodes: :all, join: true, persist: true, persist_path: dir]
             ])

    assert node == elem(bare, 1)
    assert call(m1, ElixirScope, :running?, [])

    # Persistence: each node under a folder named after it (nodes may share a host).
    for {_, n} <- [c, m1],
        do: assert(eventually(fn -> File.ls!(Path.join(dir, Atom.to_string(n))) != [] end))

    assert {:error, {:incompatible_version, message}} =
             call(m1, ElixirScope.Cluster.Remote, :start, [elem(c, 1), [], "0.0.0-other"])

    assert message =~ "0.0.0-other"
    assert message =~ ElixirScope.version()

    # join: true: a node that connects later is started too.
    late = ClusterPeers.start!("late")
    ClusterPeers.connect!(c, [late])
    assert eventually(fn -> call(late, ElixirScope, :running?, []) end)
    assert elem(late, 1) in call(c, Cluster, :members, [])

    %Result{missing: missing} = call(c, Cluster, :query, [[type: :spawn], [nodes: :all]])
    assert missing == []

    %Result{missing: [{^node, :elixir_scope_not_loaded}]} =
      call(c, Cluster, :query, [[type: :spawn], [nodes: [elem(c, 1), node]]])
  end

  test "options are checked before anything starts" do
    assert_raise ArgumentError, ~r/nodes:/, fn -> ElixirScope.setup(nodes: "a") end
    assert_raise ArgumentError, ~r/join:/, fn -> ElixirScope.setup(join: true) end
    assert_raise ArgumentError, ~r/nodes:/, fn -> Cluster.nodes("x") end
    assert_raise ArgumentError, ~r/after:/, fn -> Cluster.page(type: :spawn, after: "nope") end
    assert_raise ArgumentError, ~r/ascending/, fn -> Cluster.page(order: :desc) end
    assert_raise ArgumentError, ~r/timeout/, fn -> Cluster.page([], timeout: 0) end
    assert_raise ArgumentError, ~r/timestamp_start/, fn -> Cluster.page(timestamp_start: "x") end
    assert_raise ArgumentError, ~r/single-node/, fn -> Cluster.page(select: :count) end
  end
end
