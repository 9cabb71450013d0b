defmodule ElixirScope.PhoenixTest.Cart do
  @moduledoc false
  # A GenServer the "controller" below calls while it serves a request.
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, [])

  @impl true
  def init(items), do: {:ok, items}

  @impl true
  def handle_call({:add, item}, _from, items), do: {:reply, :ok, [item | items]}
end

defmodule ElixirScope.PhoenixTest.Pricing do
  @moduledoc false
  # Traced with trace_function/1: a call the serving process makes.
  def total(items), do: length(items) * 3
end

defmodule ElixirScope.PhoenixTest.Live do
  @moduledoc false
  # Plays a LiveView process: a GenServer whose callbacks emit the telemetry
  # LiveView emits (Phoenix.LiveView.Channel runs mount, handle_event and render
  # inside its own GenServer callbacks), with the socket's documented shape.
  use GenServer

  @view ElixirScope.PhoenixTest.CounterLive

  def start_link(_), do: GenServer.start_link(__MODULE__, nil)

  @impl true
  def init(nil), do: {:ok, %{socket: nil, joins: 0}}

  @impl true
  def handle_call({:join, params, session}, _from, state) do
    socket = socket(%{count: 0, live_action: :show})
    meta = %{socket: socket, params: params, session: session, uri: "http://localhost/c/7"}
    span([:phoenix, :live_view, :mount], meta, fn -> {socket, meta} end)
    {:reply, :ok, %{state | socket: socket, joins: state.joins + 1}}
  end

  def handle_call({:event, "inc" = event, params}, _from, %{socket: socket} = state) do
    meta = %{socket: socket, event: event, params: params}

    new =
      span([:phoenix, :live_view, :handle_event], meta, fn ->
        new = assign(socket, :count, socket.assigns.count + params["by"])
        {new, %{meta | socket: new}}
      end)

    render = %{socket: new, changed?: true, force?: false}
    span([:phoenix, :live_view, :render], render, fn -> {:ok, render} end)
    {:reply, :ok, %{state | socket: new}}
  end

  def handle_call({:crash_event, event}, _from, state) do
    meta = %{socket: state.socket, event: event, params: %{"password" => "pw-in-crash"}}
    start = System.monotonic_time()
    :telemetry.execute([:phoenix, :live_view, :handle_event, :start], %{system_time: 1}, meta)

    :telemetry.execute(
      [:phoenix, :live_view, :handle_event, :exception],
      %{duration: System.monotonic_time() - start},
      Map.merge(meta, %{
        kind: :error,
        reason: %ArgumentError{message: "bad event"},
        stacktrace: []
      })
    )

    {:reply, :ok, state}
  end

  # :telemetry.span/3 as LiveView uses it: start, then stop with the duration.
  defp span(prefix, meta, fun) do
    start = System.monotonic_time()

    :telemetry.execute(
      prefix ++ [:start],
      %{system_time: System.system_time(), monotonic_time: start},
      meta
    )

    {result, stop_meta} = fun.()
    now = System.monotonic_time()

    :telemetry.execute(
      prefix ++ [:stop],
      %{duration: now - start, monotonic_time: now},
      stop_meta
    )

    result
  end

  defp socket(assigns) do
    %{
      id: "phx-F1",
      view: @view,
      endpoint: ElixirScope.PhoenixTest.Endpoint,
      router: ElixirScope.PhoenixTest.Router,
      root_pid: self(),
      parent_pid: nil,
      transport_pid: self(),
      host_uri: "http://localhost",
      assigns: Map.merge(%{__changed__: %{}, flash: %{}}, assigns)
    }
  end

  defp assign(socket, key, value) do
    assigns = %{socket.assigns | __changed__: %{key => true}} |> Map.put(key, value)
    %{socket | assigns: assigns}
  end
end

defmodule ElixirScope.PhoenixTest do
  # ElixirScope is a singleton (registered names, one tracer): never async.
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog
  import ElixirScope.Test.Wait
  import ElixirScope.Test.Stores, only: [clean_slate: 1]

  alias ElixirScope.Phoenix, as: PX
  alias ElixirScope.TraceDB
  alias ElixirScope.PhoenixTest.{Cart, Live, Pricing}

  @moduletag :capture_log

  @endpoint ElixirScope.PhoenixTest.Endpoint
  @controller ElixirScope.PhoenixTest.CartController
  @view ElixirScope.PhoenixTest.CounterLive
  @pubsub ElixirScope.PhoenixTest.PubSub

  setup :clean_slate

  ## Helpers

  # A %Plug.Conn{} as Phoenix hands it to telemetry, with the fields that matter
  # here (and some that must never be stored: headers, cookies, query string).
  defp conn(path, extra \\ %{}) do
    Map.merge(
      %{
        method: "GET",
        request_path: path,
        host: "www.example.com",
        query_string: "api_token=qs-secret",
        req_headers: [{"authorization", "Bearer header-secret"}],
        req_cookies: %{"_key" => "cookie-secret"},
        status: nil,
        params: %{__struct__: Plug.Conn.Unfetched, aspect: :params},
        path_params: %{},
        private: %{phoenix_endpoint: @endpoint},
        assigns: %{}
      },
      extra
    )
  end

  # What Plug.Telemetry (endpoint) and Phoenix.Router (router_dispatch) emit around a
  # request, in Phoenix's order: the endpoint :stop comes before the router's :stop.
  defp serve(path, work) do
    start = System.monotonic_time()
    c = conn(path)
    :telemetry.execute([:phoenix, :endpoint, :start], %{system_time: 1}, %{conn: c, options: []})
    id = path |> String.split("/") |> List.last()
    c = %{c | path_params: %{"id" => id}, params: %{"id" => id, "password" => "hunter2"}}

    router = %{
      conn: c,
      route: "/cart/:id",
      plug: @controller,
      plug_opts: :show,
      path_params: %{"id" => id},
      pipe_through: [:browser],
      log: :debug
    }

    :telemetry.execute([:phoenix, :router_dispatch, :start], %{system_time: 1}, router)
    work.()
    done = %{c | status: 200}
    duration = System.monotonic_time() - start
    :telemetry.execute([:phoenix, :endpoint, :stop], %{duration: duration}, %{conn: done})

    :telemetry.execute(
      [:phoenix, :router_dispatch, :stop],
      %{duration: duration},
      %{router | conn: done}
    )
  end

  # A process that serves requests one after the other, as a keep-alive connection
  # process does.
  defp server do
    spawn_link(fn -> server_loop() end)
  end

  defp server_loop do
    receive do
      {:serve, path, work, from} ->
        serve(path, work)
        send(from, {:served, path})
        server_loop()

      {:run, fun, from} ->
        send(from, {:ran, fun.()})
        server_loop()
    end
  end

  defp request(server, path, work) do
    send(server, {:serve, path, work, self()})
    assert_receive {:served, ^path}, 2_000
  end

  defp in_process(server, fun) do
    send(server, {:run, fun, self()})
    assert_receive {:ran, result}, 2_000
    result
  end

  defp phoenix_handlers, do: :telemetry.list_handlers([:phoenix])

  # Every stored event, as bytes (or only those matching `filters`).
  defp raw_store(filters), do: :erlang.term_to_binary(TraceDB.query_events(filters))

  defp no_secret_stored!(secrets, filters \\ []) do
    raw = raw_store(filters)
    for s <- secrets, do: assert(:binary.match(raw, s) == :nomatch, "#{s} reached the store")
  end

  defp shape(events) do
    for e <- events do
      case e.type do
        :phoenix -> {e.kind, e[:callback], e[:phase]} |> Tuple.to_list() |> Enum.reject(&is_nil/1)
        :state -> [:state, e.callback]
        type -> [type]
      end
    end
  end

  ## Wiring

  describe "setup(phoenix: true)" do
    test "attaches one handler, an external function, to every documented event" do
      :ok = ElixirScope.setup(phoenix: true)
      handlers = phoenix_handlers()

      assert Enum.map(handlers, & &1.event_name) |> Enum.sort() ==
               Enum.sort(PX.telemetry_events())

      assert handlers |> Enum.map(& &1.id) |> Enum.uniq() == [ElixirScope.Phoenix.Capture]

      for h <- handlers do
        assert Function.info(h.function, :type) == {:type, :external}
        assert h.config.redact == ["password", "token", "secret"]
      end

      for e <- [
            [:phoenix, :endpoint, :start],
            [:phoenix, :router_dispatch, :exception],
            [:phoenix, :live_view, :handle_event, :stop],
            [:phoenix, :live_component, :update, :start],
            [:phoenix, :channel_joined],
            [:phoenix, :socket_connected]
          ],
          do: assert(e in PX.telemetry_events())
    end

    test "stop/0 detaches it, and nothing more is recorded; setup again attaches again" do
      :ok = ElixirScope.setup(phoenix: true)
      :telemetry.execute([:phoenix, :channel_joined], %{duration: 1}, %{})
      :ok = ElixirScope.stop()
      assert phoenix_handlers() == []
      :telemetry.execute([:phoenix, :channel_joined], %{duration: 2}, %{})
      assert [%{duration: 1}] = PX.events()

      :ok = ElixirScope.setup(phoenix: true, tracing_level: :minimal)
      assert length(phoenix_handlers()) == length(PX.telemetry_events())
      :ok = ElixirScope.stop()
      :ok = ElixirScope.setup()
      assert phoenix_handlers() == []
      refute Process.whereis(ElixirScope.Phoenix.Capture)
    end

    test "another application's handlers are left alone" do
      handler = fn _, _, _, _ -> :ok end
      :ok = :telemetry.attach("someone-else", [:phoenix, :endpoint, :start], handler, nil)
      on_exit(fn -> :telemetry.detach("someone-else") end)

      :ok = ElixirScope.setup(phoenix: true)
      :ok = ElixirScope.stop()
      assert [%{id: "someone-else"}] = phoenix_handlers()
    end

    test "without :telemetry: one warning, and everything else runs" do
      Application.put_env(:elixir_scope, :telemetry_module, :elixir_scope_no_such_telemetry)
      on_exit(fn -> Application.delete_env(:elixir_scope, :telemetry_module) end)

      log = capture_log(fn -> assert :ok = ElixirScope.setup(phoenix: true) end)
      warnings = Regex.scan(~r/\[warning\].*/, log)
      assert length(warnings) == 1, log
      assert log =~ "phoenix: true, but :telemetry is not loaded"
      assert phoenix_handlers() == []

      assert ElixirScope.running?()
      cart = start_supervised!(Cart)
      :ok = ElixirScope.trace_genserver(cart)
      :ok = GenServer.call(cart, {:add, :pear})
      assert wait_until(fn -> length(ElixirScope.state_timeline(cart)) == 2 end)
      assert PX.requests() == []
      # PubSub, which needs no telemetry, is still traced
      assert ElixirScope.Test.TraceState.traced({Phoenix.PubSub, :broadcast, 4}) == :local
    end

    test "phoenix: false attaches nothing and traces no PubSub function" do
      Code.ensure_loaded!(Phoenix.PubSub)
      :ok = ElixirScope.setup()
      assert phoenix_handlers() == []
      assert ElixirScope.Test.TraceState.traced({Phoenix.PubSub, :broadcast, 4}) == false
    end

    test "the redact option is validated" do
      for bad <- ["password", [:password], [""], ["ok", 1], nil, ["a" | "b"]] do
        error = assert_raise ArgumentError, fn -> ElixirScope.setup(redact: bad) end
        assert error.message =~ ":redact"
      end

      refute ElixirScope.running?()
    end
  end

  ## Requests

  describe "requests" do
    setup do
      :ok = ElixirScope.setup(phoenix: true, tracing_level: :full)
      start_supervised!({Phoenix.PubSub, name: @pubsub})
      cart = start_supervised!(Cart)
      :ok = ElixirScope.trace_genserver(cart)
      :ok = ElixirScope.trace_function({Pricing, :total, 1})
      srv = server()
      :ok = ElixirScope.trace_process(srv)
      %{cart: cart, srv: srv}
    end

    test "a request's timeline joins what the serving process did while serving it",
         %{cart: cart, srv: srv} do
      test = self()
      in_process(srv, fn -> send(test, :before_request) end)
      assert_receive :before_request

      request(srv, "/cart/1", fn ->
        :ok = GenServer.call(cart, {:add, "apple"})
        3 = Pricing.total(["apple"])
        :ok = Phoenix.PubSub.broadcast(@pubsub, "cart:1", {:added, "apple"})
      end)

      in_process(srv, fn -> send(test, :after_request) end)

      assert [req] = PX.requests()
      assert %ElixirScope.Event{type: :phoenix} = req
      assert %{kind: :endpoint, phase: :stop} = req
      assert req.pid == srv
      assert req.method == "GET"
      assert req.path == "/cart/1"
      assert req.status == 200
      assert req.route == "/cart/:id"
      assert req.module == @endpoint
      assert is_integer(req.duration) and req.duration > 0
      assert req.params == %{"id" => "1", "password" => "[REDACTED]"}

      timeline = PX.request_timeline(req)

      assert shape(timeline) == [
               [:endpoint, :start],
               [:router_dispatch, :start],
               [:send],
               [:receive],
               [:call],
               [:return],
               [:call],
               [:return],
               [:endpoint, :stop],
               [:router_dispatch, :stop]
             ]

      assert Enum.all?(timeline, &((&1[:pid] || &1[:from_pid]) == srv))

      assert [send_cart, _reply] =
               Enum.filter(timeline, &(&1.type in [:send, :receive])) |> Enum.take(2)

      assert send_cart.to_pid == cart
      assert {:"$gen_call", _, {:add, "apple"}} = send_cart.message

      calls = Enum.filter(timeline, &(&1.type == :call))

      assert [{Pricing, :total, 1}, {Phoenix.PubSub, :broadcast, 4}] =
               Enum.map(calls, &{&1.module, &1.function, &1.arity})

      route = Enum.find(timeline, &(&1[:kind] == :router_dispatch and &1.phase == :start))
      assert route.module == @controller
      assert route.action == :show
      assert route.path_params == %{"id" => "1"}

      # nothing from before the request or after it
      refute Enum.any?(timeline, &(&1[:message] in [:before_request, :after_request]))

      # the cart's state change (another process) falls inside the request's span
      [_initial, added] = ElixirScope.state_timeline(cart)
      assert added.state == ["apple"]
      assert added.timestamp > hd(timeline).timestamp
      assert added.timestamp < List.last(timeline).timestamp

      # the same by id, and from the endpoint :start event
      assert PX.request_timeline(req.id) == timeline
      [start] = PX.events(kind: :endpoint, phase: :start)
      assert PX.request_timeline(start) == timeline
      assert PX.request_timeline(req, limit: 2) == Enum.take(timeline, 2)
      assert PX.request_timeline(req, type: :call) == calls
      assert PX.request_timeline(req, order: :desc) == Enum.reverse(timeline)

      # conns are never stored whole
      no_secret_stored!(["hunter2", "qs-secret", "header-secret", "cookie-secret"])
    end

    test "requests served one after the other by one process have their own timelines",
         %{srv: srv, cart: cart} do
      for id <- 1..3 do
        request(srv, "/cart/#{id}", fn -> GenServer.call(cart, {:add, id}) end)
      end

      reqs = PX.requests()
      assert Enum.map(reqs, & &1.path) == ["/cart/1", "/cart/2", "/cart/3"]

      for {req, id} <- Enum.zip(reqs, 1..3) do
        timeline = PX.request_timeline(req)
        assert [%{kind: :endpoint, phase: :start, path: path} | _] = timeline
        assert path == "/cart/#{id}"
        assert %{kind: :router_dispatch, phase: :stop} = List.last(timeline)
        assert [msg] = for(%{type: :send, message: m} <- timeline, do: m)
        assert {:"$gen_call", _, {:add, ^id}} = msg
      end

      assert [%{path: "/cart/3"}] = PX.requests(order: :desc, limit: 1)
      assert [%{path: "/cart/2"}] = PX.requests(path: "/cart/2")
      assert PX.requests(status: 500) == []
      assert length(PX.requests(pid: srv, route: "/cart/:id")) == 3
      assert PX.requests(pid: self()) == []

      # more :phoenix events than one page between the matches
      for _ <- 1..300, do: :telemetry.execute([:phoenix, :channel_handled_in], %{}, %{})
      request(srv, "/cart/4", fn -> :ok end)
      assert [%{path: "/cart/4"}] = PX.requests(path: "/cart/4")
      assert [%{path: "/cart/4"}, %{path: "/cart/3"}] = PX.requests(order: :desc, limit: 2)
      assert length(PX.requests()) == 4

      # fields take the tests of ElixirScope.Query, evaluated in C
      assert length(PX.requests(status: {:<, 300}, path: {:prefix, "/cart/"})) == 4
      assert [%{path: "/cart/1"}] = PX.requests(path: {:in, ["/cart/1", "/nope"]})
      assert PX.requests(status: {:>=, 500}) == []

      {[first], cursor} =
        ElixirScope.Query.page(type: :phoenix, where: [kind: :endpoint, phase: :stop], limit: 1)

      assert [%{path: "/cart/2"}] = PX.requests(after: cursor, limit: 1)
      assert first.path == "/cart/1"
    end

    test "a router exception ends the request's timeline", %{srv: srv} do
      in_process(srv, fn ->
        c = conn("/boom")
        :telemetry.execute([:phoenix, :endpoint, :start], %{system_time: 1}, %{conn: c})
        meta = %{conn: c, route: "/boom", plug: @controller, plug_opts: :boom}
        :telemetry.execute([:phoenix, :router_dispatch, :start], %{system_time: 1}, meta)

        wrapped = %{
          __struct__: Plug.Conn.WrapperError,
          __exception__: true,
          conn: %{c | params: %{"password" => "in-wrapped-conn"}},
          kind: :error,
          reason: %RuntimeError{message: "kaboom"},
          stack: []
        }

        :telemetry.execute(
          [:phoenix, :endpoint, :stop],
          %{duration: 10},
          %{conn: %{c | status: 500}}
        )

        :telemetry.execute(
          [:phoenix, :router_dispatch, :exception],
          %{duration: 10},
          Map.merge(meta, %{kind: :error, reason: wrapped, stacktrace: []})
        )
      end)

      assert [req] = PX.requests(status: 500)
      timeline = PX.request_timeline(req)
      assert %{kind: :router_dispatch, phase: :exception} = exc = List.last(timeline)
      assert exc.class == :error
      assert exc.error == "** (RuntimeError) kaboom"
      no_secret_stored!(["in-wrapped-conn"])
    end

    test "bad arguments raise, a request no longer stored gives []" do
      :telemetry.execute([:phoenix, :channel_joined], %{duration: 1}, %{})
      [joined] = PX.events()

      assert_raise ArgumentError, ~r/not_a_filter/, fn -> PX.requests(not_a_filter: 1) end
      assert_raise ArgumentError, ~r/:status/, fn -> PX.requests(status: "200") end
      assert_raise ArgumentError, ~r/:method/, fn -> PX.requests(method: :get) end
      assert_raise ArgumentError, ~r/events\/1/, fn -> PX.requests(kind: :live_view) end
      assert_raise ArgumentError, ~r/keyword/, fn -> PX.events(%{kind: :endpoint}) end
      assert_raise ArgumentError, ~r/:limit/, fn -> PX.requests(limit: -1) end
      assert_raise ArgumentError, ~r/request/, fn -> PX.request_timeline("1") end
      assert_raise ArgumentError, ~r/request/, fn -> PX.request_timeline(joined) end
      assert_raise ArgumentError, ~r/:pid/, fn -> PX.request_timeline(joined, pid: self()) end
      assert PX.request_timeline(10_000_000) == []
      assert_raise ArgumentError, ~r/pid/, fn -> PX.live_view_timeline(:lv) end
      assert_raise ArgumentError, ~r/:topic/, fn -> PX.broadcasts(topic: 1) end
      assert_raise ArgumentError, ~r/:module/, fn -> PX.broadcasts(module: Foo) end
    end
  end

  ## LiveView

  describe "live_view_timeline/2" do
    setup do
      :ok = ElixirScope.setup(phoenix: true)
      lv = start_supervised!(Live)
      %{lv: lv}
    end

    test "mount, events and renders, with the state changes between them", %{lv: lv} do
      :ok = ElixirScope.trace_genserver(lv)

      :ok =
        GenServer.call(
          lv,
          {:join, %{"id" => "7", "token" => "params-secret"},
           %{"_csrf_token" => "csrf-secret", "user_id" => 42}}
        )

      :ok = GenServer.call(lv, {:event, "inc", %{"by" => 1}})
      :ok = GenServer.call(lv, {:event, "inc", %{"by" => 2}})
      wait_until(fn -> length(ElixirScope.state_timeline(lv)) == 4 end)

      timeline = PX.live_view_timeline(lv)
      lv_event = [[:live_view, :handle_event, :start], [:live_view, :handle_event, :stop]]
      render = [[:live_view, :render, :start], [:live_view, :render, :stop]]

      assert shape(timeline) ==
               [[:state, :initial], [:live_view, :mount, :start], [:live_view, :mount, :stop]] ++
                 [[:state, :handle_call]] ++
                 lv_event ++
                 render ++
                 [[:state, :handle_call]] ++
                 lv_event ++ render ++ [[:state, :handle_call]]

      [mount_start, mount_stop] = Enum.filter(timeline, &(&1[:callback] == :mount))
      assert mount_start.view == @view
      assert mount_start.module == @view
      assert mount_start.connected == true
      assert mount_start.params == %{"id" => "7", "token" => "[REDACTED]"}
      assert mount_start.session == %{"_csrf_token" => "[REDACTED]", "user_id" => 42}
      assert mount_start.uri == "http://localhost/c/7"
      assert mount_stop.assigns == %{count: 0, flash: %{}, live_action: :show}
      assert mount_stop.diff == nil
      assert is_integer(mount_stop.duration)
      refute Map.has_key?(mount_stop, :params)

      [inc1, inc2] =
        Enum.filter(timeline, &(&1[:callback] == :handle_event and &1.phase == :stop))

      assert inc1.event == "inc"
      assert inc1.diff == [{[:count], :changed, 0, 1}]
      assert inc2.diff == [{[:count], :changed, 1, 3}]

      [start1 | _] = Enum.filter(timeline, &(&1[:callback] == :handle_event))
      assert start1.params == %{"by" => 1}

      assert [%{changed: true, force: false} | _] =
               Enum.filter(timeline, &(&1[:callback] == :render))

      # the process's own state, with its diffs
      states = Enum.filter(timeline, &(&1.type == :state))
      assert List.last(states).state.socket.assigns.count == 3
      assert {[:socket, :assigns, :count], :changed, 1, 3} in List.last(states).diff

      # listing options
      assert PX.live_view_timeline(lv, order: :desc) == Enum.reverse(timeline)
      assert PX.live_view_timeline(lv, limit: 3) == Enum.take(timeline, 3)

      assert PX.live_view_timeline(lv, order: :desc, limit: 2) ==
               timeline |> Enum.reverse() |> Enum.take(2)

      assert PX.events(view: @view, callback: :handle_event, phase: :stop) == [
               Map.delete(inc1, :diff),
               Map.delete(inc2, :diff)
             ]

      # the module index finds a LiveView's events in C
      assert length(TraceDB.query_events(type: :phoenix, module: @view)) == 10
      assert [e | _] = PX.events(module: @view)
      assert inspect(e) =~ "live_view mount start"
      assert inspect(e) =~ inspect(@view)

      # Only the :phoenix events: this test also traces the process, and the tracer
      # records its messages and states as they are (the join call carries the params).
      no_secret_stored!(["params-secret", "csrf-secret"], type: :phoenix)
    end

    test "an exception in a callback is recorded with its error", %{lv: lv} do
      :ok = GenServer.call(lv, {:join, %{}, %{}})
      :ok = GenServer.call(lv, {:crash_event, "explode"})

      assert [exc] = PX.events(phase: :exception)
      assert exc.kind == :live_view
      assert exc.callback == :handle_event
      assert exc.event == "explode"
      assert exc.class == :error
      assert exc.error == "** (ArgumentError) bad event"
      assert exc.params == %{"password" => "[REDACTED]"}
      no_secret_stored!(["pw-in-crash"])
    end

    test "live components are recorded with their module" do
      socket = %{view: @view, assigns: %{__changed__: nil, id: "cart", secret: "lc-secret"}}
      meta = %{socket: socket, component: ElixirScope.PhoenixTest.CartComponent}

      :telemetry.execute(
        [:phoenix, :live_component, :handle_event, :start],
        %{system_time: 1},
        Map.merge(meta, %{event: "remove", params: %{"item" => "1"}})
      )

      :telemetry.execute(
        [:phoenix, :live_component, :handle_event, :stop],
        %{duration: 5},
        Map.merge(meta, %{event: "remove", params: %{"item" => "1"}})
      )

      [start, stop] = PX.live_view_timeline(self())
      assert start.kind == :live_component
      assert start.module == ElixirScope.PhoenixTest.CartComponent
      assert start.view == @view
      assert start.params == %{"item" => "1"}
      assert stop.assigns == %{id: "cart", secret: "[REDACTED]"}
      assert stop.duration == 5
      no_secret_stored!(["lc-secret"])
    end
  end

  ## Channels and sockets

  test "a socket connection and a channel join and message" do
    :ok = ElixirScope.setup(phoenix: true)

    :telemetry.execute([:phoenix, :socket_connected], %{duration: 7}, %{
      endpoint: @endpoint,
      transport: :websocket,
      params: %{"token" => "socket-secret", "vsn" => "2.0.0"},
      connect_info: %{session: %{"user_token" => "session-secret"}},
      vsn: "2.0.0",
      user_socket: ElixirScope.PhoenixTest.UserSocket,
      log: :info,
      result: :ok,
      serializer: Phoenix.Socket.V2.JSONSerializer
    })

    socket = %{
      topic: "room:lobby",
      channel: ElixirScope.PhoenixTest.RoomChannel,
      endpoint: @endpoint,
      transport: :websocket,
      join_ref: "1",
      assigns: %{user_id: 9, auth_token: "assign-secret"},
      joined: true
    }

    :telemetry.execute([:phoenix, :channel_joined], %{duration: 11}, %{
      result: :ok,
      params: %{"last_seen" => 3},
      socket: socket
    })

    :telemetry.execute([:phoenix, :channel_handled_in], %{duration: 13}, %{
      event: "new_msg",
      params: %{"body" => "hi"},
      socket: socket
    })

    assert [connected] = PX.events(kind: :socket_connected)
    assert connected.module == ElixirScope.PhoenixTest.UserSocket
    assert connected.result == :ok
    assert connected.transport == :websocket
    assert connected.params == %{"token" => "[REDACTED]", "vsn" => "2.0.0"}
    assert connected.duration == 7
    assert connected.pid == self()

    assert [joined, handled] = PX.events(topic: "room:lobby")
    assert joined.kind == :channel_joined
    assert joined.module == ElixirScope.PhoenixTest.RoomChannel
    assert joined.result == :ok
    assert joined.params == %{"last_seen" => 3}
    assert joined.assigns == %{user_id: 9, auth_token: "[REDACTED]"}
    assert joined.duration == 11
    assert handled.kind == :channel_handled_in
    assert handled.event == "new_msg"
    assert handled.params == %{"body" => "hi"}
    assert PX.events(kind: :channel_handled_in, event: "new_msg") == [handled]

    no_secret_stored!(["socket-secret", "session-secret", "assign-secret"])
  end

  ## PubSub

  describe "PubSub broadcasts" do
    setup do
      :ok = ElixirScope.setup(phoenix: true, tracing_level: :full)
      start_supervised!({Phoenix.PubSub, name: @pubsub})
      :ok
    end

    test "are traced once each, with their topic and message, in the broadcasting process" do
      for {f, a} <- [
            broadcast: 4,
            broadcast_from: 5,
            local_broadcast: 4,
            local_broadcast_from: 5,
            direct_broadcast: 5
          ],
          do: assert(ElixirScope.Test.TraceState.traced({Phoenix.PubSub, f, a}) == :local)

      test = self()

      spawn_link(fn ->
        :ok = Phoenix.PubSub.subscribe(@pubsub, "room:1")
        send(test, :subscribed)

        for _ <- 1..4 do
          receive do
            msg -> send(test, {:got, msg})
          end
        end
      end)

      assert_receive :subscribed

      broadcaster =
        Task.async(fn ->
          :ok = Phoenix.PubSub.broadcast(@pubsub, "room:1", {:msg, 1})
          :ok = Phoenix.PubSub.broadcast!(@pubsub, "room:1", {:msg, 2})
          :ok = Phoenix.PubSub.broadcast_from(@pubsub, self(), "room:1", {:msg, 3})
          :ok = Phoenix.PubSub.local_broadcast(@pubsub, "room:2", {:msg, 4})
          :ok = Phoenix.PubSub.direct_broadcast(node(), @pubsub, "room:1", {:msg, 5})
          self()
        end)

      pid = Task.await(broadcaster)
      for n <- [1, 2, 3, 5], do: assert_receive({:got, {:msg, ^n}})

      all = PX.broadcasts()

      assert Enum.map(all, &{&1.function, &1.topic, &1.message}) == [
               {:broadcast, "room:1", {:msg, 1}},
               {:broadcast, "room:1", {:msg, 2}},
               {:broadcast_from, "room:1", {:msg, 3}},
               {:local_broadcast, "room:2", {:msg, 4}},
               {:direct_broadcast, "room:1", {:msg, 5}}
             ]

      assert Enum.all?(all, &(&1.pid == pid and &1.module == Phoenix.PubSub))
      assert length(PX.broadcasts(topic: "room:1")) == 4
      assert [%{message: {:msg, 5}}] = PX.broadcasts(order: :desc, limit: 1)
      assert PX.broadcasts(pid: self()) == []

      :ok = ElixirScope.stop()
      assert ElixirScope.Test.TraceState.traced({Phoenix.PubSub, :broadcast, 4}) == false
    end
  end

  ## Redaction

  describe "redaction" do
    test "the default list: any key containing password, token or secret, any case, any depth" do
      :ok = ElixirScope.setup(phoenix: true)

      params = %{
        "user" => %{"Password" => "pw-1", "password_confirmation" => "pw-2", "name" => "ann"},
        "AUTH_TOKEN" => "tok-1",
        "items" => [%{"client_secret" => "sec-1", "n" => 1}],
        "opts" => [api_token: "tok-2", page: 2],
        "pair" => {:secret, "sec-2"},
        "nested" => %{"deeper" => %{"x" => [1, %{"my_token_here" => "tok-3"}]}}
      }

      assigns = %{
        current_user: %URI{host: "example.com", userinfo: "keep", path: "/"},
        session_secret: "sec-3",
        form: [password: "pw-3"],
        __changed__: %{session_secret: true}
      }

      socket = %{view: @view, assigns: assigns}

      :telemetry.execute([:phoenix, :live_view, :mount, :start], %{}, %{
        socket: socket,
        params: params,
        session: %{}
      })

      :telemetry.execute([:phoenix, :live_view, :mount, :stop], %{duration: 1}, %{
        socket: socket,
        params: params
      })

      [start, stop] = PX.events()

      assert start.params == %{
               "user" => %{
                 "Password" => "[REDACTED]",
                 "password_confirmation" => "[REDACTED]",
                 "name" => "ann"
               },
               "AUTH_TOKEN" => "[REDACTED]",
               "items" => [%{"client_secret" => "[REDACTED]", "n" => 1}],
               "opts" => [api_token: "[REDACTED]", page: 2],
               "pair" => {:secret, "[REDACTED]"},
               "nested" => %{"deeper" => %{"x" => [1, %{"my_token_here" => "[REDACTED]"}]}}
             }

      assert stop.assigns == %{
               current_user: %URI{host: "example.com", userinfo: "keep", path: "/"},
               session_secret: "[REDACTED]",
               form: [password: "[REDACTED]"]
             }

      no_secret_stored!(~w(pw-1 pw-2 pw-3 tok-1 tok-2 tok-3 sec-1 sec-2 sec-3))
    end

    test "a configured list replaces the default; an empty list redacts nothing" do
      :ok = ElixirScope.setup(phoenix: true, redact: ["EMAIL"])
      params = %{"email" => "a@b.c", "Work_Email" => "w@b.c", "password" => "visible"}
      :telemetry.execute([:phoenix, :channel_joined], %{}, %{params: params})

      assert [%{params: stored}] = PX.events()

      assert stored == %{
               "email" => "[REDACTED]",
               "Work_Email" => "[REDACTED]",
               "password" => "visible"
             }

      :ok = ElixirScope.stop(keep_data: false)
      :ok = ElixirScope.setup(phoenix: true, redact: [])
      :telemetry.execute([:phoenix, :channel_joined], %{}, %{params: params})
      assert [%{params: ^params}] = PX.events()
    end
  end

  ## Malformed metadata

  test "handlers survive malformed metadata and stay attached" do
    :ok = ElixirScope.setup(phoenix: true)
    improper = [{"password", "improper-secret"} | :tail]

    log =
      capture_log(fn ->
        for {event, measurements, metadata} <- [
              {[:phoenix, :endpoint, :start], %{}, %{conn: nil}},
              {[:phoenix, :endpoint, :start], %{}, %{conn: 42}},
              {[:phoenix, :endpoint, :stop], %{duration: "long"}, %{}},
              {[:phoenix, :endpoint, :stop], %{duration: 1},
               %{conn: %{method: 5, request_path: nil, private: :x, params: "x", status: "200"}}},
              {[:phoenix, :router_dispatch, :start], %{},
               %{
                 conn: "x",
                 route: 5,
                 plug: "Ctrl",
                 plug_opts: [1],
                 path_params: 7,
                 phoenix_live_view: {}
               }},
              {[:phoenix, :router_dispatch, :exception], %{duration: 1},
               %{kind: :bogus, reason: {:weird}, stacktrace: :no}},
              {[:phoenix, :router_dispatch, :exception], %{duration: 1},
               %{kind: :error, reason: %{__struct__: NoSuchException, __exception__: true}}},
              {[:phoenix, :router_dispatch, :exception], %{},
               %{kind: :error, reason: %{__struct__: Plug.Conn.WrapperError}}},
              {[:phoenix, :live_view, :mount, :start], %{},
               %{socket: %{view: "NotAModule", assigns: 5}, params: improper, session: :x}},
              {[:phoenix, :live_view, :handle_event, :stop], %{}, %{socket: :not_a_socket}},
              {[:phoenix, :live_view, :render, :stop], %{duration: -1},
               %{socket: nil, changed?: "yes"}},
              {[:phoenix, :live_component, :update, :stop], %{}, %{socket: %{assigns: [1, 2]}}},
              {[:phoenix, :channel_joined], %{}, %{socket: nil, params: nil, result: "ok"}},
              {[:phoenix, :channel_handled_in], %{duration: :x}, %{socket: [], event: %{}}},
              {[:phoenix, :socket_connected], %{}, %{}},
              {[:phoenix, :socket_connected], %URI{}, %URI{port: 1}}
            ] do
          assert :telemetry.execute(event, measurements, metadata) == :ok
        end
      end)

    refute log =~ "has failed"
    assert length(phoenix_handlers()) == length(PX.telemetry_events())

    # each still became an event, with what could be taken
    events = PX.events()
    assert length(events) == 16
    assert Enum.all?(events, &(&1.pid == self() and is_atom(&1.kind)))
    assert [%{kind: :endpoint, phase: :start} = first | _] = events
    refute Map.has_key?(first, :method)

    assert Enum.find(events, &(&1[:callback] == :mount)).params == [
             {"password", "[REDACTED]"} | :tail
           ]

    no_secret_stored!(["improper-secret"])

    # the handler itself, called with anything at all
    for args <- [
          [[:phoenix, :endpoint, :start], nil, nil, nil],
          [[:phoenix, :endpoint, :start], %{}, %{conn: %{}}, :no_config],
          [:not_a_list, 1, 2, 3],
          [[:phoenix, :unknown], %{}, %{}, %{redact: []}],
          [[:phoenix, :live_view, :nope, :start], %{}, %{}, %{redact: ["x"]}]
        ],
        do: assert(apply(ElixirScope.Phoenix.Capture, :handle_event, args) == :ok)

    # and a well-formed event is still recorded afterwards
    :telemetry.execute([:phoenix, :socket_connected], %{duration: 3}, %{result: :ok})
    assert %{kind: :socket_connected, duration: 3} = List.last(PX.events())
  end

  test "with ElixirScope stopped, handlers called directly store nothing and do not fail" do
    assert ElixirScope.Phoenix.Capture.handle_event([:phoenix, :channel_joined], %{}, %{}, %{
             redact: []
           }) == :ok
  end

  ## The stand-in itself

  test "the :telemetry stand-in detaches a failing handler, as the real one does" do
    fail = fn _, _, _, _ -> raise "handler bug" end
    :ok = :telemetry.attach_many("failing", [[:es_test, :boom]], fail, nil)
    assert {:error, :already_exists} = :telemetry.attach("failing", [:es_test, :x], fail, nil)

    log = capture_log(fn -> :ok = :telemetry.execute([:es_test, :boom], %{}, %{}) end)
    assert log =~ "has failed and has been detached"
    assert :telemetry.list_handlers([:es_test]) == []
    assert :telemetry.detach("failing") == {:error, :not_found}
  end
end
