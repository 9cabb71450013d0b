defmodule ElixirScope.UIBrowserTest do
  @moduledoc """
  The web UI in a real browser: Debian's `chromium`, driven by `playwright-core`
  (pinned in `test/ui_browser/package-lock.json`; `make test` runs `npm ci` there and
  `make setup` installs chromium — no browser is downloaded). Against a real traced
  application (`ElixirScope.Test.UIApp`, plus a ticking GenServer so that the live
  tail has something to show), `test/ui_browser/views.mjs` opens every view,
  interacts with it (search and open a process, step the state slider with the
  keyboard, read the sequence diagram of two processes and brush a window, click a
  call, filter and pause the tail, download an export) and reports what the page
  shows; this test compares it with what the store holds.

  A screenshot of each view is saved in `_build/ui_screenshots/` (`make ui-screenshots`
  copies three of them into `docs/ui/` for the README).
  """
  use ExUnit.Case, async: false

  import ElixirScope.Test.Stores, only: [clean_slate: 1]

  alias ElixirScope.Test.UIApp
  alias ElixirScope.{TimeTravel, TraceDB}

  @moduletag :capture_log
  @moduletag timeout: 300_000

  @dir Path.expand("ui_browser", __DIR__)

  setup_all do
    node = System.find_executable("node")

    unless node && File.dir?(Path.join(@dir, "node_modules/playwright-core")) do
      flunk(
        "the browser tests need Node.js >= 20 and `npm ci` in test/ui_browser (`make test` does both)"
      )
    end

    unless File.exists?("/usr/bin/chromium") or System.get_env("CHROMIUM") do
      flunk("the browser tests need Debian's chromium (`make setup` installs it)")
    end

    %{node: node}
  end

  setup :clean_slate

  defp pid_text(pid), do: pid |> :erlang.pid_to_list() |> List.to_string()

  defp run(ctx, script, plan) do
    path = Path.join(System.tmp_dir!(), "ui_plan_#{System.unique_integer([:positive])}.json")
    File.write!(path, ElixirScope.JSON.encode!(plan))
    on_exit(fn -> File.rm(path) end)

    {out, status} =
      System.cmd(ctx.node, [Path.join(@dir, script), path], stderr_to_stdout: true, cd: @dir)

    assert status == 0, "the browser run failed:\n#{out}"
    out |> String.split("\n", trim: true) |> List.last() |> ElixirScope.Test.JSON.decode!()
  end

  defp shots,
    do: Path.expand("../_build/ui_screenshots", __DIR__)

  # A GenServer whose state changes every 50 ms: events for the live tail.
  defp ticker do
    {:ok, pid} = Agent.start(fn -> %{ticks: 0} end)
    :ok = ElixirScope.trace_genserver(pid)

    loop =
      spawn(fn ->
        Stream.repeatedly(fn ->
          Agent.update(pid, &%{&1 | ticks: &1.ticks + 1})
          Process.sleep(50)
        end)
        |> Stream.run()
      end)

    on_exit(fn ->
      Process.exit(loop, :kill)
      Process.exit(pid, :kill)
    end)
  end

  test "every view, against a real traced application", ctx do
    :ok = ElixirScope.setup(ui: [port: 0])
    app = UIApp.start()
    on_exit(fn -> UIApp.stop(app) end)
    ticker()
    states = TraceDB.get_state_history(app.cart)
    flow = TimeTravel.message_flow(app.client, app.cart)
    module = "ElixirScope.Test.UIApp.Pricing"

    seen =
      run(ctx, "views.mjs", %{
        url: ElixirScope.UI.url(),
        shots: shots(),
        pids: %{
          cart: pid_text(app.cart),
          client: pid_text(app.client),
          worker: pid_text(app.worker)
        },
        module: module,
        state_ids: Enum.map(states, & &1.id)
      })

    assert seen["problems"] == []

    # processes: rows of live processes; the search finds the cart, with its states
    p = seen["processes"]
    assert is_number(p["first_rows_ms"])
    assert length(p["pids"]) == 50 and Enum.all?(p["pids"], &(&1 =~ ~r/^<\d+\.\d+\.\d+>$/))
    assert "Mailbox" in p["headers"] and "Memory ▾" in p["headers"]
    assert p["search"]["pids"] == [pid_text(app.cart)]
    assert "ElixirScope.Test.UIApp.Cart.init/1" in p["search"]["cells"]
    assert Integer.to_string(length(states)) in p["search"]["cells"]
    assert seen["process"]["title"] =~ pid_text(app.cart)
    assert "States (#{length(states)})" in seen["process"]["links"]

    # states: the latest first; three back, one forward, the first
    timeline = TimeTravel.state_timeline(app.cart)
    n = length(timeline)
    s = seen["states"]
    assert s["last"]["position"] =~ "step #{n} of #{n}"
    assert s["last"]["id"] == List.last(timeline).id
    back = Enum.at(timeline, n - 4)
    assert s["back3"]["id"] == back.id and s["back3"]["position"] =~ "step #{n - 3} of #{n}"
    assert s["back3"]["callback"] == Atom.to_string(back.callback)
    assert s["back3"]["cause"] == inspect(back.cause)
    assert length(s["back3"]["diff"]) == length(back.diff)
    assert s["forward1"]["id"] == Enum.at(timeline, n - 3).id
    assert s["first"]["id"] == hd(timeline).id and s["first"]["diff"] == []
    assert s["first"]["callback"] == "initial"
    # the tree shows the first state's keys, three levels open
    assert Enum.any?(s["tree_rows"], &(&1 =~ "total:")) and
             Enum.any?(s["tree_rows"], &(&1 =~ "items:"))

    # each changed path of a step is highlighted in its tree
    assert s["back3"]["changed_rows"] != []
    assert length(s["renders"]) >= 5

    # messages: every message between the two, in order, labelled; brushing narrows
    m = seen["messages"]
    assert m["ids"] == Enum.map(flow, & &1.id)
    assert m["lanes"] == [pid_text(app.client), pid_text(app.cart)]
    assert "call {:add, :pear, 1}" in m["labels"]
    assert "message" in m["detail"]["fields"]
    assert m["brushed"]["hash"] =~ "from=" and m["brushed"]["hash"] =~ "to="
    assert m["brushed"]["ids"] != [] and length(m["brushed"]["ids"]) < length(m["ids"])
    assert m["brushed"]["ids"] -- m["ids"] == []

    # calls: one root per call of the cart, the exception's detail, the latency table
    tree = ElixirScope.call_tree(app.cart)
    c = seen["calls"]
    assert c["roots"] == Enum.map(tree, & &1.call_id)
    assert length(c["bars"]) == length(tree) + Enum.sum(Enum.map(tree, &length(&1.children)))
    assert Enum.sort(c["latency"]) == ["base/1", "quote/2"]
    assert "Raised (:error)" in c["detail"] and "Arguments" in c["detail"]

    # crashes: the worker's, with its stacktrace and last messages
    cr = seen["crashes"]
    assert cr["reason"] =~ "** (RuntimeError) bad job after 3 good ones"
    assert cr["stack"] =~ "ElixirScope.Test.UIApp.worker_loop/1"
    assert "{:job, :bad}" in cr["messages"]

    assert seen["phoenix"]["text"] =~ "phoenix: true"

    # tail: filtered to states, paused still, resumed growing, never over 1,000 rows
    t = seen["tail"]
    assert t["types"] == ["ev ev-state"]
    assert t["paused_same"] and t["status"] =~ "paused"
    assert t["resumed_rows"] > t["paused_rows"] and t["resumed_rows"] <= 1000
    assert t["ids"] == Enum.sort(t["ids"])

    stored =
      TraceDB.query_events(
        type: :state,
        after_id: hd(t["ids"]) - 1,
        before_id: List.last(t["ids"]) + 1
      )

    assert Enum.map(stored, & &1.id) == t["ids"]

    # exports
    assert seen["exports"]["mermaid"] =~ "sequenceDiagram"
    assert seen["exports"]["chrome_events"] > length(flow)
  end

  test "a loaded recording (post-mortem): named in the header, no live columns", ctx do
    :ok = ElixirScope.setup()
    app = UIApp.start()
    on_exit(fn -> UIApp.stop(app) end)
    %{path: path, url: url} = UIApp.reload_as_recording!()
    seen = run(ctx, "recording.mjs", %{url: url, shots: shots(), cart: pid_text(app.cart)})
    assert seen["problems"] == []
    assert seen["recording"] == path
    refute "Memory" in seen["headers"] or "Mailbox" in seen["headers"]
    assert "Alive" in seen["headers"]

    assert seen["cart_states"] ==
             Integer.to_string(length(ElixirScope.TraceDB.get_state_history(app.cart)))

    # wall-clock times from the offsets the recording keeps beside its events
    assert seen["state_time"] =~ ~r/^\d\d:\d\d:\d\d\.\d{6}$/
  end
end
