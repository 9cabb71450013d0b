defmodule ElixirScope.UIAPITest do
  @moduledoc """
  The web UI's JSON API over real HTTP, against a real traced application
  (`ElixirScope.Test.UIApp`): every answer is compared with what the store holds,
  read through the facade. Then the same on a recording dumped, stopped and loaded
  again (post-mortem).
  """
  use ExUnit.Case, async: false

  import ElixirScope.Test.UIHTTP
  import ElixirScope.Test.Stores, only: [clean_slate: 1]

  alias ElixirScope.Test.UIApp
  alias ElixirScope.Test.UIApp.Pricing
  alias ElixirScope.{TimeTravel, TraceDB}
  alias ElixirScope.UI.TermJSON

  @moduletag :capture_log

  setup_all do
    {:ok, _} = Application.ensure_all_started(:inets)
    :ok
  end

  setup :clean_slate

  setup do
    :ok = ElixirScope.setup(ui: [port: 0])
    app = UIApp.start()
    on_exit(fn -> UIApp.stop(app) end)
    Map.put(app, :url, ElixirScope.UI.url())
  end

  # A term as it comes back from the API (encoded, then through a JSON parser).
  defp as_json(term),
    do: term |> TermJSON.encode() |> ElixirScope.JSON.encode!() |> ElixirScope.Test.JSON.decode!()

  test "meta: a live recording, what is traced, the store, the clock", ctx do
    meta = get!(ctx.url, "api/meta")
    assert meta["mode"] == "live" and meta["recording"] == nil
    assert pid_text(ctx.cart) in meta["tracing"]["genservers"]
    assert pid_text(ctx.client) in meta["tracing"]["processes"]
    assert "ElixirScope.Test.UIApp.Pricing" in meta["tracing"]["modules"]
    assert meta["store"]["stored"] == TraceDB.stats().stored or meta["store"]["stored"] > 0
    assert String.to_integer(meta["clock"]["offset"]) == System.time_offset()
    assert meta["clock"]["per_second"] == System.convert_time_unit(1, :second, :native)
    assert byte_size(meta["csrf"]) >= 24
  end

  describe "processes" do
    test "live: every process, sorted, searched and paged; the page's rows with their events",
         ctx do
      all = get!(ctx.url, "api/processes", limit: 500, sort: "pid", dir: "asc")
      assert all["live"] and all["total"] >= length(Process.list()) - 20
      row = Enum.find(all["items"], &(&1["pid"] == pid_text(ctx.cart)))
      assert row["module"] == "ElixirScope.Test.UIApp.Cart.init/1"
      assert row["states"] == length(TraceDB.get_state_history(ctx.cart))
      assert row["events"] == ElixirScope.process_info(ctx.cart).history.events
      pids = Enum.map(all["items"], & &1["pid"])
      assert pids == Enum.sort_by(pids, &(&1 |> String.to_charlist() |> :erlang.list_to_pid()))

      by_memory = get!(ctx.url, "api/processes", sort: "memory", limit: 20)["items"]
      memories = Enum.map(by_memory, & &1["memory"])
      # Memory moves between reading the keys and the rows: mostly descending.
      assert length(memories) == 20 and hd(memories) >= List.last(memories)

      found = get!(ctx.url, "api/processes", q: "UIApp.Cart")
      assert [%{"pid" => cart}] = found["items"]
      assert cart == pid_text(ctx.cart) and found["total"] == 1

      page = get!(ctx.url, "api/processes", sort: "pid", dir: "asc", offset: 3, limit: 2)
      assert Enum.map(page["items"], & &1["pid"]) -- Enum.slice(pids, 2, 4) == []
    end

    test "exited: the recorded crash, newest first", ctx do
      exited = get!(ctx.url, "api/processes", view: "exited")
      row = Enum.find(exited["items"], &(&1["pid"] == pid_text(ctx.worker)))
      assert row["crashed"] and row["reason"] =~ "bad job after 3 good ones"
    end

    test "one process: live info, history, peers", ctx do
      p = get!(ctx.url, "api/process", pid: pid_text(ctx.cart))
      info = ElixirScope.process_info(ctx.cart)
      assert p["alive"] and p["genserver"] and p["traced"]
      assert p["history"]["events"] == info.history.events
      assert p["history"]["by_type"]["state"] == info.history.by_type[:state]
      assert Enum.any?(p["peers"], &(&1["pid"] == pid_text(ctx.client)))
      assert get(ctx.url, "api/process", pid: "<0.32000.5>").status == 404
    end

    test "bad parameters answer 400 naming the problem", ctx do
      assert %{status: 400, json: %{"error" => e}} = get(ctx.url, "api/processes", sort: "zzz")
      assert e =~ "sort must be one of"
      assert %{status: 400, json: %{"error" => e}} = get(ctx.url, "api/process", pid: "self()")
      assert e =~ "pid"
      assert get(ctx.url, "api/processes", limit: "-1").status == 400
      assert get(ctx.url, "api/nowhere").status == 404
    end
  end

  describe "state timeline" do
    test "the ids of every state, and each step whole with its cause and diff", ctx do
      history = TraceDB.get_state_history(ctx.cart)
      index = get!(ctx.url, "api/states", pid: pid_text(ctx.cart))
      assert index["ids"] == Enum.map(history, & &1.id)
      assert index["total"] == 15 and not index["more_before"]

      timeline = TimeTravel.state_timeline(ctx.cart)

      for expected <- timeline do
        step = get!(ctx.url, "api/state", pid: pid_text(ctx.cart), id: expected.id)
        assert step["state"] == as_json(expected.state)
        assert step["callback"] == Atom.to_string(expected.callback)
        assert step["cause"] == as_json(expected[:cause])
        assert String.to_integer(step["ts"]) == expected.timestamp
        assert step["size"] == :erlang.external_size(expected.state)

        expected_diff =
          if expected.diff,
            do:
              Enum.map(
                expected.diff,
                &as_json(Tuple.to_list(&1) |> then(fn [p | r] -> [p | r] end))
              )

        if expected.diff do
          assert length(step["diff"]) == length(expected_diff)

          for {[path, kind, old, new], {epath, ekind, eold, enew}} <-
                Enum.zip(step["diff"], expected.diff) do
            assert path == Enum.map(epath, &as_json/1)
            assert kind == Atom.to_string(ekind)
            assert old == as_json(eold) and new == as_json(enew)
          end
        else
          assert step["diff"] == nil
        end
      end

      # windows of the slider
      [first, second | _] = index["ids"]
      later = get!(ctx.url, "api/states", pid: pid_text(ctx.cart), after: first, limit: 3)
      assert hd(later["ids"]) == second and length(later["ids"]) == 3 and later["more_after"]
      assert get(ctx.url, "api/state", pid: pid_text(ctx.cart), id: 1).status == 404
    end
  end

  describe "messages" do
    test "between two processes: every message, delivery matched, lanes, density", ctx do
      flow = TimeTravel.message_flow(ctx.client, ctx.cart)

      answer =
        get!(ctx.url, "api/messages",
          pids: "#{pid_text(ctx.client)},#{pid_text(ctx.cart)}",
          overview: 1
        )

      assert Enum.map(answer["messages"], & &1["id"]) == Enum.map(flow, & &1.id)
      assert Enum.map(answer["lanes"], & &1["pid"]) == [pid_text(ctx.client), pid_text(ctx.cart)]
      # both are traced: every message has the :receive that took it in
      assert Enum.all?(answer["messages"], &is_integer(&1["recv_id"]))
      call = Enum.find(answer["messages"], &(&1["label"] == "call {:add, :pear, 1}"))
      assert call["from"] == pid_text(ctx.client) and call["to"] == pid_text(ctx.cart)
      assert Enum.sum(answer["overview"]["counts"]) == length(flow)

      # a window: only what falls in it
      [_, m2, m3 | _] = flow

      window =
        get!(ctx.url, "api/messages",
          pids: "#{pid_text(ctx.client)},#{pid_text(ctx.cart)}",
          from: m2.timestamp,
          to: m3.timestamp
        )

      assert Enum.map(window["messages"], & &1["id"]) == [m2.id, m3.id]
    end

    test "one process: its messages with anyone, and its crash marked", ctx do
      answer = get!(ctx.url, "api/messages", pids: pid_text(ctx.worker))
      assert [%{"type" => "crash", "reason" => reason}] = answer["marks"]
      assert reason =~ "bad job"
    end
  end

  describe "calls" do
    test "a process's call tree, one call whole, latency per function", ctx do
      tree = get!(ctx.url, "api/calls", pid: pid_text(ctx.cart))
      expected = ElixirScope.call_tree(ctx.cart)
      assert length(tree["roots"]) == length(expected)
      assert Enum.map(tree["roots"], & &1["id"]) == Enum.map(expected, & &1.call_id)
      # earlier calls: the window before the last one
      last = List.last(expected)
      earlier = get!(ctx.url, "api/calls", pid: pid_text(ctx.cart), to: last.timestamp - 1)

      assert Enum.map(earlier["roots"], & &1["id"]) ==
               Enum.map(Enum.drop(expected, -1), & &1.call_id)

      bomb = Enum.find(tree["roots"], & &1["exception"])
      assert bomb["mfa"] == "ElixirScope.Test.UIApp.Pricing.quote/2"

      one = get!(ctx.url, "api/call", id: hd(expected).call_id)
      assert one["args"] == as_json(hd(expected).args)
      assert one["outcome"]["result"] == as_json(hd(expected).result)
      assert one["calls_inside"] == 1

      raised = get!(ctx.url, "api/call", id: bomb["id"])
      assert raised["outcome"]["class"] == ":error"

      perf = get!(ctx.url, "api/performance", module: "ElixirScope.Test.UIApp.Pricing")

      for row <- ElixirScope.performance_analysis(Pricing) do
        got = Enum.find(perf["functions"], &(&1["function"] == "#{row.function}/#{row.arity}"))
        assert got["calls"] == row.calls and got["exceptions"] == row.exceptions
        assert String.to_integer(got["p99"]) == row.p99
      end

      assert "ElixirScope.Test.UIApp.Pricing" in get!(ctx.url, "api/modules")["modules"]
      slow = get!(ctx.url, "api/slowest", module: "ElixirScope.Test.UIApp.Pricing", limit: 3)
      assert length(slow["calls"]) == 3
      assert get(ctx.url, "api/performance", module: "No.Such.Module").status == 400
    end
  end

  test "crashes: reason, stacktrace, last messages", ctx do
    [crash] =
      get!(ctx.url, "api/crashes")["items"] |> Enum.filter(&(&1["pid"] == pid_text(ctx.worker)))

    assert crash["reason"] =~ "(RuntimeError) bad job after 3 good ones"
    assert is_list(crash["stacktrace"]) and crash["stacktrace"] != []
    summaries = Enum.map(crash["last_messages"], & &1["summary"])
    assert "{:job, :bad}" in summaries and "{:job, 3}" in summaries
  end

  test "the tail: events after a cursor, newest kept, filters", ctx do
    first = get!(ctx.url, "api/tail", limit: 5)
    assert length(first["items"]) == 5
    cursor = first["cursor"]
    for i <- 1..30, do: TraceDB.store_event(:note, %{pid: ctx.cart, i: i})
    next = get!(ctx.url, "api/tail", after: cursor, limit: 10, pid: pid_text(ctx.cart))
    # more than fit: the newest 10, and it says so
    assert next["skipped"]
    assert Enum.map(next["items"], & &1["summary"]) |> List.last() =~ "i: 30"
    assert Enum.all?(next["items"], &(&1["id"] > cursor))

    states = get!(ctx.url, "api/tail", types: "state", limit: 100)["items"]
    assert Enum.all?(states, &(&1["type"] == "state")) and length(states) >= 15
    assert get(ctx.url, "api/tail", types: "nonsense").status == 400
  end

  test "an event whole", ctx do
    [e | _] = TraceDB.get_state_history(ctx.cart)
    whole = get!(ctx.url, "api/event", id: e.id)
    fields = Map.new(whole["fields"], fn [k, v] -> {k, v} end)
    assert fields["state"] == as_json(e.state)
    assert whole["type"] == "state" and whole["pid"] == pid_text(ctx.cart)
  end

  test "exports: a Chrome trace and a Mermaid diagram of a selection", ctx do
    pids = "#{pid_text(ctx.client)},#{pid_text(ctx.cart)}"
    chrome = get(ctx.url, "api/export/chrome", pids: pids)
    assert chrome.status == 200
    assert chrome.headers["content-disposition"] =~ "attachment"
    trace = ElixirScope.Test.JSON.decode!(chrome.body)
    assert is_list(trace["traceEvents"]) and trace["traceEvents"] != []

    mermaid = get(ctx.url, "api/export/mermaid", pids: pids)
    assert mermaid.status == 200 and mermaid.body =~ "sequenceDiagram"
    assert mermaid.body =~ "->>"
  end

  describe "tracing actions" do
    test "POST /api/trace traces and stops tracing, with the CSRF token, same-origin only", ctx do
      csrf = get!(ctx.url, "api/meta")["csrf"]
      {:ok, other} = Agent.start(fn -> 0 end)
      on_exit(fn -> Process.exit(other, :kill) end)
      %URI{host: host, port: port} = URI.parse(ctx.url)
      origin = "http://#{host}:#{port}"
      body = %{action: "trace_process", pid: pid_text(other)}
      good = [{"origin", origin}, {"x-csrf-token", csrf}]

      assert post(ctx.url, "api/trace", body, [{"origin", origin}]).status == 403
      assert post(ctx.url, "api/trace", body, [{"x-csrf-token", csrf}]).status == 403

      assert post(ctx.url, "api/trace", body, [
               {"origin", "http://localhost:1"},
               {"x-csrf-token", csrf}
             ]).status == 403

      assert post(ctx.url, "api/trace", body, good ++ [{"content-type", "text/plain"}]).status ==
               415

      refute other in ElixirScope.tracing_info().processes

      assert %{status: 200} = post(ctx.url, "api/trace", body, good)
      assert other in ElixirScope.tracing_info().processes

      assert %{status: 200} =
               post(
                 ctx.url,
                 "api/trace",
                 %{action: "untrace_process", pid: pid_text(other)},
                 good
               )

      refute other in ElixirScope.tracing_info().processes

      assert %{status: 400, json: %{"error" => e}} =
               post(ctx.url, "api/trace", %{action: "explode"}, good)

      assert e =~ "action must be one of"

      assert post(ctx.url, "api/trace", %{action: "trace_module", module: "Nope.Nope"}, good).status ==
               400

      assert get(ctx.url, "api/trace").status == 405
    end
  end

  test "post-mortem: a loaded recording, named in meta, with its own clock", ctx do
    cart_states = TraceDB.get_state_history(ctx.cart)
    offset = System.time_offset()
    %{path: path, url: url} = UIApp.reload_as_recording!()

    meta = get!(url, "api/meta")
    assert meta["mode"] == "recording" and meta["recording"]["path"] == path
    assert meta["tracing"] == nil
    assert String.to_integer(meta["clock"]["offset"]) == offset

    recorded = get!(url, "api/processes", limit: 500)
    refute recorded["live"]
    row = Enum.find(recorded["items"], &(&1["pid"] == pid_text(ctx.cart)))
    assert row["states"] == length(cart_states)
    refute Map.has_key?(row, "memory")
    crashed = Enum.find(recorded["items"], &(&1["pid"] == pid_text(ctx.worker)))
    assert crashed["crashed"] and crashed["reason"] =~ "bad job"
    assert get(url, "api/processes", view: "live").status == 400

    assert get!(url, "api/states", pid: pid_text(ctx.cart))["ids"] ==
             Enum.map(cart_states, & &1.id)
  end
end
