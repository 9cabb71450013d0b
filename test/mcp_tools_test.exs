defmodule ElixirScope.MCPToolsTest.Pricing do
  @moduledoc false
  # Traced through the MCP tools below.
  def quote(items), do: Enum.sum(Enum.map(items, &price/1))
  defp price(:apple), do: 3
  defp price(:pear), do: 5
  def slow(ms), do: Process.sleep(ms)
end

defmodule ElixirScope.MCPToolsTest.Cart do
  @moduledoc false
  use GenServer

  def start_link(name), do: GenServer.start_link(__MODULE__, %{items: [], total: 0}, name: name)

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:add, item}, _from, state) do
    items = [item | state.items]
    state = %{state | items: items, total: ElixirScope.MCPToolsTest.Pricing.quote(items)}
    {:reply, state.total, state}
  end

  def handle_call({:put, key, value}, _from, state), do: {:reply, :ok, Map.put(state, key, value)}

  @impl true
  def handle_cast(:crash, _state), do: raise("cart crashed on purpose")
end

defmodule ElixirScope.MCPToolsTest do
  @moduledoc """
  Every MCP tool over real HTTP, against a real traced GenServer, a traced module and
  a real crash: what each answers, the errors that tell an assistant what to do
  next, limits and cursors, and the answer budget.
  """
  use ExUnit.Case, async: false

  import ElixirScope.Test.MCPHTTP
  import ElixirScope.Test.Wait
  import ElixirScope.Test.Stores, only: [clean_slate: 1]

  alias ElixirScope.MCPToolsTest.{Cart, Pricing}
  alias ElixirScope.TraceDB

  @moduletag :capture_log

  setup_all do
    {:ok, _} = Application.ensure_all_started(:inets)
    :ok
  end

  setup :clean_slate

  setup do
    # What explicit tracing records (and does not): lifecycle: :all, the default on
    # OTP 27+, would record every process these tests spawn (tested on its own).
    :ok = ElixirScope.setup(ai_integration: true, mcp: [port: 0], lifecycle: :traced)
    url = ElixirScope.MCP.url()
    {session, _} = initialize(url)
    %{url: url, session: session}
  end

  defp call(ctx, tool, args), do: call_tool(ctx.url, ctx.session, tool, args)

  defp ok!(ctx, tool, args \\ %{}) do
    {text, error} = call(ctx, tool, args)
    refute error, "#{tool} failed: #{text}"
    text
  end

  defp error!(ctx, tool, args) do
    {text, error} = call(ctx, tool, args)
    assert error, "#{tool} should have failed, answered: #{text}"
    text
  end

  defp pid_string(pid), do: inspect(pid)

  # Unlinked (some tests crash it), stopped after the test.
  defp start_cart do
    {:ok, cart} = Cart.start_link(Cart)
    Process.unlink(cart)
    on_exit(fn -> Process.exit(cart, :kill) end)
    cart
  end

  # A cart traced through the tools, by name, with two items added.
  defp traced_cart(ctx) do
    cart = start_cart()

    ok!(ctx, "elixir_scope_trace_named_process", %{
      "process_name" => "ElixirScope.MCPToolsTest.Cart"
    })
    |> Kernel.=~("Tracing")
    |> assert()

    ok!(ctx, "elixir_scope_trace_module", %{"module_name" => "ElixirScope.MCPToolsTest.Pricing"})
    assert GenServer.call(cart, {:add, :apple}) == 3
    assert GenServer.call(cart, {:add, :pear}) == 8
    wait_until(fn -> length(TraceDB.query_events(type: :state, pid: cart)) >= 3 end)
    cart
  end

  describe "the original tools" do
    test "state timeline, execution path and state changes of a traced GenServer", ctx do
      cart = traced_cart(ctx)
      pid = pid_string(cart)

      text = ok!(ctx, "elixir_scope_get_state_timeline", %{"pid_string" => pid})
      assert text =~ "States of #{pid}"
      assert text =~ "state: %{items: [], total: 0}"
      assert text =~ "handle_call {:add, :apple}"
      assert text =~ "[:total]: 0 → 3"
      assert text =~ "[:total]: 3 → 8"

      # The same process by its registered name
      assert ok!(ctx, "elixir_scope_get_state_timeline", %{
               "pid_string" => "ElixirScope.MCPToolsTest.Cart"
             }) == text

      path = ok!(ctx, "elixir_scope_get_execution_path", %{"pid_string" => pid})
      assert path =~ "receive"
      assert path =~ "Pricing.quote/1"

      analysis = ok!(ctx, "elixir_scope_analyze_state_changes", %{"pid_string" => pid})
      assert analysis =~ "3 states recorded"
      assert analysis =~ "2 changes"
      assert analysis =~ "[:total] ×2"
      assert analysis =~ "handle_call :add ×2"
    end

    test "message flow between two processes", ctx do
      cart = traced_cart(ctx)
      me = self()
      ok!(ctx, "elixir_scope_trace_process", %{"pid_string" => pid_string(me)})
      send(cart, {:hello, 1})
      wait_until(fn -> TraceDB.query_events(type: :send, pid: me) != [] end)

      text =
        ok!(ctx, "elixir_scope_get_message_flow", %{
          "from_pid" => pid_string(me),
          "to_pid" => pid_string(cart)
        })

      assert text =~ "{:hello, 1}"
      ElixirScope.untrace_process(me)
    end

    test "function calls, performance analysis and slowest calls of a traced module", ctx do
      traced_cart(ctx)
      Pricing.slow(20)

      calls =
        ok!(ctx, "elixir_scope_get_function_calls", %{
          "module_name" => "ElixirScope.MCPToolsTest.Pricing"
        })

      assert calls =~
               ~r/call #PID<[\d.]+> ElixirScope.MCPToolsTest.Pricing.quote\/1\[\[:apple\]\]/

      refute calls =~ "module_info"
      assert calls =~ "return"
      assert calls =~ "→ 8"

      perf =
        ok!(ctx, "elixir_scope_performance_analysis", %{
          "module_name" => "ElixirScope.MCPToolsTest.Pricing"
        })

      assert perf =~ "quote/1: 2 calls, 0 exceptions"
      assert perf =~ "slow/1: 1 calls"

      slowest =
        ok!(ctx, "elixir_scope_slowest_calls", %{
          "module_name" => "ElixirScope.MCPToolsTest.Pricing",
          "limit" => 1
        })

      assert slowest =~
               ~r/^Slowest calls, slowest first:\n\d+ ms ElixirScope.MCPToolsTest.Pricing.slow\/1/

      assert length(String.split(slowest, "\n")) == 2
    end

    test "supervision tree", ctx do
      text = ok!(ctx, "elixir_scope_get_supervision_tree")
      assert text =~ "[kernel]"
      assert text =~ ~r/^\[kernel\] #PID<[\d.]+> :kernel_sup \(:kernel\) one_for_all restarts=0/m
      assert text =~ ~r/^  :code_server worker #PID<[\d.]+> :code_server \[:code\]$/m
    end
  end

  describe "finding one's way" do
    test "status, list, find and inspect processes", ctx do
      cart = traced_cart(ctx)
      pid = pid_string(cart)

      status = ok!(ctx, "elixir_scope_status")
      assert status =~ "Tracing: level full"
      assert status =~ "Modules traced: ElixirScope.MCPToolsTest.Pricing"
      assert status =~ ~r/Store: \d+ events/

      list =
        ok!(ctx, "elixir_scope_list_processes", %{"sort_by" => "message_queue_len", "limit" => 3})

      assert list =~ ~r/^\d+ processes; by message_queue_len/
      assert length(String.split(list, "\n")) == 5
      assert list =~ ~s(More: call again with "cursor": "o3")

      found =
        ok!(ctx, "elixir_scope_find_processes", %{
          "module_name" => "ElixirScope.MCPToolsTest.Cart"
        })

      assert found =~ "#{pid} alive (live, recorded)"
      assert ok!(ctx, "elixir_scope_find_processes", %{"name" => "MCPToolsTest.Cart"}) =~ pid

      info = ok!(ctx, "elixir_scope_process_info", %{"pid_string" => pid})
      assert info =~ "Running: status"
      assert info =~ "ElixirScope.MCPToolsTest.Cart"
      assert info =~ "Last state"
      assert info =~ "total: 8"
    end

    test "state at a moment, by timestamp and by event id", ctx do
      cart = traced_cart(ctx)
      [first, second | _] = TraceDB.query_events(type: :state, pid: cart)

      by_ts =
        ok!(ctx, "elixir_scope_get_state_at", %{
          "pid_string" => pid_string(cart),
          "timestamp" => Integer.to_string(second.timestamp)
        })

      assert by_ts =~ "total: 3"

      by_id =
        ok!(ctx, "elixir_scope_get_state_at", %{
          "pid_string" => pid_string(cart),
          "event_id" => first.id
        })

      assert by_id =~ "total: 0"

      assert error!(ctx, "elixir_scope_get_state_at", %{
               "pid_string" => pid_string(cart),
               "timestamp" => "#{first.timestamp - 1}"
             }) =~
               "first recorded state is later"

      assert error!(ctx, "elixir_scope_get_state_at", %{"pid_string" => pid_string(cart)}) =~
               "give timestamp or event_id"
    end

    test "events between two timestamps, by type and process", ctx do
      cart = traced_cart(ctx)
      [_, second, third | _] = TraceDB.query_events(type: :state, pid: cart)

      text =
        ok!(ctx, "elixir_scope_get_events_between", %{
          "start_timestamp" => "#{second.timestamp}",
          "end_timestamp" => "#{third.timestamp}",
          "type" => "state",
          "pid_string" => pid_string(cart)
        })

      assert text =~ "##{second.id} "
      assert text =~ "##{third.id} "
      assert length(String.split(text, "\n")) == 3

      assert error!(ctx, "elixir_scope_get_events_between", %{"type" => "bogus"}) =~
               "type must be one of"
    end

    test "system snapshot and message queue analysis", ctx do
      :ok = ElixirScope.stop(keep_data: false)
      :ok = ElixirScope.setup(trace_all: true, ai_integration: true, mcp: [port: 0])
      ctx = %{ctx | url: ElixirScope.MCP.url()}
      {session, _} = initialize(ctx.url)
      ctx = %{ctx | session: session}
      cart = start_cart()
      GenServer.call(cart, {:add, :apple})

      snapshot = ok!(ctx, "elixir_scope_system_snapshot", %{"limit" => 500})
      # wall-clock time for people, then the raw timestamp tools take back
      assert snapshot =~ ~r/Processes alive at \d{4}-\d\d-\d\dT[\d:.]+Z t=/
      assert snapshot =~ "#{pid_string(cart)} ElixirScope.MCPToolsTest.Cart"

      # paged by pid, at the same moment: the pages together are the whole snapshot
      [_, t] = Regex.run(~r/alive at \S+ t=(-?\d+)/, snapshot)
      all = for [_, pid] <- Regex.scan(~r/^(#PID<[\d.]+>)/m, snapshot), do: pid
      assert length(all) > 10
      assert snapshot_pages(ctx, %{"timestamp" => t, "limit" => 7}) == all

      queues =
        ok!(ctx, "elixir_scope_message_queue_analysis", %{"window_ms" => 60_000, "limit" => 100})

      assert queues =~ "Longest mailboxes now:"
      assert queues =~ "Recorded traffic, last 60000 ms"
      assert queues =~ pid_string(cart)
    end

    test "recent crashes: reason, last state and last messages", ctx do
      cart = traced_cart(ctx)
      GenServer.cast(cart, :crash)
      wait_until(fn -> TraceDB.query_events(type: :crash, pid: cart) != [] end)

      text = ok!(ctx, "elixir_scope_recent_crashes")
      assert text =~ "#{pid_string(cart)} crashed:"
      assert text =~ "cart crashed on purpose"
      assert text =~ "last state: %{items: [:pear, :apple], total: 8}"
      assert text =~ ":crash"

      # older crashes continue with the cursor, newest first
      for reason <- [:one, :two, :three] do
        pid = spawn(fn -> receive(do: (r -> exit(r))) end)
        :ok = ElixirScope.trace_process(pid)
        send(pid, reason)
        assert wait_until(fn -> TraceDB.query_events(type: :crash, pid: pid) != [] end)
      end

      first = ok!(ctx, "elixir_scope_recent_crashes", %{"limit" => 2})
      assert first =~ "crashed: :three" and first =~ "crashed: :two"
      assert [_, cursor] = Regex.run(~r/"cursor": "(esq1\.[\w-]+)"/, first)
      rest = ok!(ctx, "elixir_scope_recent_crashes", %{"limit" => 2, "cursor" => cursor})
      assert rest =~ "crashed: :one" and rest =~ "cart crashed on purpose"
      refute rest =~ ":two"
    end

    test "stop tracing a module, a process, everything", ctx do
      cart = traced_cart(ctx)

      ok!(ctx, "elixir_scope_stop_tracing", %{"module_name" => "ElixirScope.MCPToolsTest.Pricing"})

      refute ElixirScope.MCPToolsTest.Pricing in ElixirScope.tracing_info().modules
      ok!(ctx, "elixir_scope_stop_tracing", %{"pid_string" => pid_string(cart)})

      assert ok!(ctx, "elixir_scope_stop_tracing") =~ "Stopped all tracing"
      refute ElixirScope.running?()
      # The server and the recording stay.
      assert ok!(ctx, "elixir_scope_status") =~ "Tracing: stopped"

      assert ok!(ctx, "elixir_scope_get_state_timeline", %{"pid_string" => pid_string(cart)}) =~
               "[:total]: 3 → 8"

      assert error!(ctx, "elixir_scope_trace_process", %{"pid_string" => pid_string(cart)}) =~
               "ElixirScope is not tracing"
    end
  end

  describe "errors tell the assistant what to do next" do
    test "bad and unknown pids", ctx do
      for bad <- ["0.1.2", "#PID<0.1>", "#PID<a.b.c>", "<0.1.2>x", "no_such_process_name"] do
        assert error!(ctx, "elixir_scope_process_info", %{"pid_string" => bad}) =~ "pid_string"
      end

      gone = spawn(fn -> :ok end)
      wait_until(fn -> not Process.alive?(gone) end)

      assert error!(ctx, "elixir_scope_process_info", %{"pid_string" => pid_string(gone)}) =~
               "not running and nothing is recorded"

      assert error!(ctx, "elixir_scope_process_info", %{"pid_string" => 12}) =~
               "pid_string must be a non-empty string"
    end

    test "a GenServer not traced yet, a dead process", ctx do
      cart = start_cart()

      assert error!(ctx, "elixir_scope_get_state_timeline", %{"pid_string" => pid_string(cart)}) =~
               "trace it first with elixir_scope_trace_process"

      dead = spawn(fn -> :ok end)
      wait_until(fn -> not Process.alive?(dead) end)

      assert error!(ctx, "elixir_scope_trace_process", %{"pid_string" => pid_string(dead)}) =~
               "not running"

      assert error!(ctx, "elixir_scope_get_execution_path", %{"pid_string" => pid_string(dead)}) =~
               "not running"
    end

    test "modules not loaded, not traced", ctx do
      assert error!(ctx, "elixir_scope_trace_module", %{"module_name" => "No.Such.Module"}) =~
               "no module named \"No.Such.Module\" is loaded"

      assert error!(ctx, "elixir_scope_get_function_calls", %{
               "module_name" => "ElixirScope.MCPToolsTest.Pricing"
             }) =~
               "is not traced: call elixir_scope_trace_module"

      assert error!(ctx, "elixir_scope_performance_analysis", %{"module_name" => ":lists"}) =~
               "trace it with elixir_scope_trace_module"
    end

    test "missing, unknown and malformed arguments", ctx do
      assert error!(ctx, "elixir_scope_get_message_flow", %{"from_pid" => "<0.1.0>"}) =~
               "missing argument to_pid"

      assert error!(ctx, "elixir_scope_status", %{"verbose" => true}) =~
               "unknown argument verbose; this tool takes: nothing"

      assert error!(ctx, "elixir_scope_list_processes", %{"limit" => 0}) =~
               "limit must be an integer in 1..500"

      assert error!(ctx, "elixir_scope_list_processes", %{"sort_by" => "age"}) =~
               "sort_by must be one of"

      assert error!(ctx, "elixir_scope_list_processes", %{"cursor" => "e12"}) =~
               "does not continue this listing"

      assert error!(ctx, "elixir_scope_get_execution_path", %{
               "pid_string" => "<0.1.0>",
               "cursor" => "esq1.x"
             }) =~ "cursor is malformed"

      assert error!(ctx, "elixir_scope_get_execution_path", %{
               "pid_string" => "<0.1.0>",
               "cursor" => "o3"
             }) =~ "does not continue this listing"

      assert error!(ctx, "elixir_scope_find_processes", %{}) =~ "give module_name or name"

      assert error!(ctx, "elixir_scope_trace_named_process", %{"process_name" => "nobody_here"}) =~
               "No process is registered"
    end
  end

  describe "limits, cursors and the answer budget" do
    test "a listing continues with its cursor, without gaps or repeats", ctx do
      cart = start_cart()
      ok!(ctx, "elixir_scope_trace_process", %{"pid_string" => pid_string(cart)})
      for _ <- 1..30, do: GenServer.call(cart, {:add, :apple})
      wait_until(fn -> length(TraceDB.query_events(type: :state, pid: cart)) >= 31 end)
      expected = for e <- TraceDB.query_events(pid: cart), do: e.id

      ids = page_ids(ctx, %{"pid_string" => pid_string(cart), "limit" => 7}, [])
      assert ids == expected
    end

    test "no answer passes the budget; a cut listing names its cursor", ctx do
      :ok = ElixirScope.stop(keep_data: false)
      :ok = ElixirScope.setup(ai_integration: true, mcp: [port: 0, max_tokens: 1_000])
      ctx = %{ctx | url: ElixirScope.MCP.url()}
      {session, _} = initialize(ctx.url)
      ctx = %{ctx | session: session}

      cart = start_cart()
      ok!(ctx, "elixir_scope_trace_process", %{"pid_string" => pid_string(cart)})
      big = String.duplicate("x", 500)
      for i <- 1..40, do: GenServer.call(cart, {:put, i, big})
      wait_until(fn -> length(TraceDB.query_events(type: :state, pid: cart)) >= 41 end)

      args = %{"pid_string" => pid_string(cart), "limit" => 500}

      for tool <- ~w(elixir_scope_get_execution_path elixir_scope_get_state_timeline
                     elixir_scope_process_info elixir_scope_get_supervision_tree
                     elixir_scope_list_processes) do
        args =
          if tool in ~w(elixir_scope_get_supervision_tree elixir_scope_list_processes),
            do: Map.delete(args, "pid_string"),
            else: args

        args = if tool == "elixir_scope_process_info", do: Map.delete(args, "limit"), else: args
        text = ok!(ctx, tool, args)
        assert byte_size(text) <= 3_000, "#{tool} answered #{byte_size(text)} bytes"
      end

      text = ok!(ctx, "elixir_scope_get_execution_path", args)
      assert [_, cursor] = Regex.run(~r/"cursor": "(esq1\.[\w-]+)"/, text)
      expected = for e <- TraceDB.query_events(pid: cart), do: e.id
      assert page_ids(ctx, Map.put(args, "cursor", cursor), event_ids(text)) == expected
    end
  end

  defp snapshot_pages(ctx, args) do
    text = ok!(ctx, "elixir_scope_system_snapshot", args)
    pids = for [_, pid] <- Regex.scan(~r/^(#PID<[\d.]+>)/m, text), do: pid

    case Regex.run(~r/"cursor": "(p[\d.]+)"/, text) do
      [_, cursor] -> pids ++ snapshot_pages(ctx, Map.put(args, "cursor", cursor))
      nil -> pids
    end
  end

  defp page_ids(ctx, args, acc) do
    text = ok!(ctx, "elixir_scope_get_execution_path", args)
    acc = acc ++ event_ids(text)

    case Regex.run(~r/"cursor": "(esq1\.[\w-]+)"/, text) do
      [_, cursor] -> page_ids(ctx, Map.put(args, "cursor", cursor), acc)
      nil -> acc
    end
  end

  defp event_ids(text),
    do: for([_, id] <- Regex.scan(~r/^#(\d+) \S+ t=/m, text), do: String.to_integer(id))
end
